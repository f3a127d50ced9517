# The patient portal's words, in English (the fallback for every other language).
# Ids are kebab-case by feature: nav-, home-, list-, entry-, form-, history-, login-, error-,
# section- (a section's name), field-SECTION-FIELD (a field's label; .hint its help line) and
# choice-WORD (a word a choice field holds). Every variable is named in the comment above its
# message. A new language is a copy of this file under i18n/LANG/ and one line in
# portal/src/i18n.rs.

site-name = Health record
skip-to-content = Skip to the main content
# Said by a screen reader when an open page is redrawn with a change from another device.
live-updated = Updated with a change from another device.

## Navigation
nav-label = Sections
nav-home = Home
nav-sign-out = Sign out
nav-documents = Documents
nav-reports = Reports
nav-transfer = Import / export

## Sections, as people call them
section-profile = About
section-conditions = Conditions
section-allergies = Allergies
section-medications = Medications
section-labs = Test results
section-notes = Session notes
section-goals = Goals
section-plans = Treatment plans
section-documents = Documents
section-insurance = Insurance
section-appointments = Appointments
section-messages = Messages
section-forms = Forms
section-caregiver-log = Caregivers' log
section-procedures = Procedures
section-immunizations = Immunizations
section-vitals = Vital signs
section-encounters = Visits
section-care-team = Care team
section-audit = Activity log

## Home page
# $name: the patient's name
home-title = { $name }
home-unnamed = This record has no name yet
home-upcoming = Upcoming appointments
home-upcoming-none = No upcoming appointments.
home-notes = Recent session notes
home-notes-none = No session notes yet.
home-messages = Recent messages
home-messages-none = No messages yet.
home-goals = Goals at a glance
home-goals-none = No goals yet.
# $value: the latest measure; $target: the goal's target; $unit: its unit (may be empty)
home-goal-progress = Latest: { $value } of { $target } { $unit }
# $value: the latest measure; $unit: its unit (may be empty)
home-goal-latest = Latest: { $value } { $unit }
home-goal-none = No progress recorded yet.
home-see-all = See all
home-sections = Everything in the record
home-places = Documents, reports, import and export

## A section's list
# $count: how many entries the section holds
list-count = { $count ->
    [0] Nothing here yet.
    [one] One entry.
   *[other] { $count } entries.
}
# $section: the section's name
list-add = Add to { $section }
list-request = Request an appointment
list-upload = Upload a document
list-open = Open
# $name: who wrote the entry
list-by = by { $name }

## One entry
entry-written-by = Written by
entry-created = Created
entry-updated = Last changed
entry-edit = Change
entry-amend = Add a correction
entry-progress = Record progress
entry-stop = Stop this medication
entry-history = History
entry-history-none = No history is kept for this entry.
entry-back = Back to the list
entry-not-found = There is no such entry.
entry-amendments = Corrections
# $name: who wrote the correction; $when: when
entry-amended-by = Added by { $name } on { $when }
entry-amend-reason = Reason
entry-progress-list = Progress
# $name: the file's name
entry-download = Download { $name }
entry-original-kept = The original stays in the record; corrections are added below it.

## Who changed what
history-when = When
history-who = Who
history-what = What
history-add = Created it
history-edit = Changed it
history-stop = Stopped it
history-amend = Added a correction
history-progress = Recorded progress
history-other = Other change
# $fields: the fields changed, comma-separated
history-fields = Changed: { $fields }
history-this-device = this device
history-root-key = the patient's root key

## Forms
form-required = required
form-save = Save
form-cancel = Cancel
form-errors = Please fix what is marked below.
form-choose = Choose…
# $parts: the parts one line holds, e.g. name, relationship, phone
form-items-hint = One per line, as: { $parts }
form-list-hint = One per line.
# $section: the section's name
form-add-title = Add to { $section }
# $section: the section's name
form-edit-title = Change an entry in { $section }
form-request-title = Request an appointment
form-amend-title = Add a correction to a session note
form-amend-text = Correction
form-amend-reason = Why (optional)
form-progress-title = Record progress
form-progress-value = Measured value
form-progress-note = Note (optional)
form-progress-date = Day measured
form-stop-title = Stop a medication
form-stop-date = Day it was stopped
form-stop-reason = Why (optional)
form-stop-kept = The medication stays in the record, marked stopped with this day.
form-saved = Saved.
form-not-allowed = This record's access does not let you change this.
form-expired = This form has expired. Please go back, reload the page and try again.
form-not-a-number = This is not a number: write it with digits, e.g. 6 or 2.5.

## Uploading a document
upload-title = Upload a document
# $limit: the largest file taken, e.g. 100 MB
upload-intro = Choose a file (the school's IEP, an assessment, a photo of an insurance card) and say what it is. Files up to { $limit } are taken. The file is stored encrypted on this device and reaches the family's other devices when they sync.
upload-file = File
# $limit: the largest file taken
upload-file-hint = Up to { $limit }. You can also drop a file here.
upload-submit = Upload
upload-progress = Sent so far
upload-no-file = Choose a file to upload.
# $limit: the largest file taken
upload-too-large = This file is too large: files up to { $limit } are taken. Nothing was stored.
upload-broken = The upload did not arrive whole. Nothing was stored; please try again.
download-not-here = This file has not reached this device yet. It arrives when this device next syncs with the one that has it; try again in a moment.
download-damaged = This device's copy of the file is damaged and was removed. An intact copy is fetched at the next sync; try again then.

## Sizes ($n: a number, already written out)
size-bytes = { $n } bytes
size-kb = { $n } KB
size-mb = { $n } MB
size-gb = { $n } GB

## Reports
report-title = Reports
report-intro = A printable summary of the record, made for who will read it. Each gets only what it needs. Downloading one is noted in the activity log.
report-audience = Who it is for
report-audience-hint = School IEP team: goals with progress charts, therapy notes, allergies, medications, documents; never insurance or diagnoses. Specialist: the clinical picture in full, without insurance. Insurer: coverage, diagnoses, goals and session counts; no note text.
report-for-iep = School IEP team
report-for-specialist = Specialist
report-for-insurer = Insurer
report-format = File type
report-pdf = PDF (to print or send)
report-html = Web page (HTML)
report-immunizations = Immunizations in a school's report
report-immunizations-hint = A school's report leaves the vaccines out unless you put them in. Other reports decide for themselves: a specialist's has them, an insurer's does not.
report-immunizations-no = Leave them out
report-immunizations-yes = Put them in
report-immunizations-iep-only = Only a school's report asks this: choose "Leave them out" for the others.
report-since = Therapy notes from
report-since-hint = The first day of therapy notes and session counts. Leave empty for the last 90 days.
report-submit = Download the report
report-choose-audience = Choose who the report is for.
report-choose-format = Choose a file type.
report-since-future = This day is in the future: a report covers the time up to today.

## Import and export (FHIR)
transfer-title = Import / export
export-heading = Export the record
export-text = Download the whole record as a FHIR R4 bundle, the standard file other health systems read. Exporting is noted in the activity log.
export-submit = Download the FHIR bundle
import-heading = Import from another system
import-file = FHIR bundle (.json)
# $limit: the largest bundle taken
import-file-hint = A FHIR R4 Bundle exported by a clinic, hospital or patient portal, up to { $limit }.
import-check = Only check it first
import-check-no = No, import it
import-check-yes = Yes, show what would change and store nothing
import-submit = Import
import-not-text = This file is not a FHIR bundle: it is not text. Nothing was changed.
# $why: what is wrong with the bundle, in phr's words
import-refused = This bundle could not be imported, and nothing was changed: { $why }
import-title = Import summary
import-done = The bundle was imported.
import-checked = Checked only: nothing was stored. Import it to keep these changes.
import-nothing-new = Nothing changed: the record already holds all of it.
# $file: the file's name; $count: how many resources; $kind: the bundle's type
import-about = { $file }: a FHIR { $kind } bundle of { $count ->
    [one] one resource
   *[other] { $count } resources
}.
import-mapped = What was mapped into the record
import-section = Section
import-created = New
import-updated = Updated
import-unchanged = Already there
# $count: how many session notes were kept as written
import-kept = { $count ->
    [one] One session note differs from the bundle's and is kept as written: notes are never rewritten (add a correction instead).
   *[other] { $count } session notes differ from the bundle's and are kept as written: notes are never rewritten (add a correction instead).
}
import-unmapped = What was not imported
import-unmapped-none = Everything in the bundle has a place in the record.
# $count: how many resources of this kind
import-unmapped-count = { $count ->
    [one] one resource
   *[other] { $count } resources
}
import-again = Import or export another

## A goal's page
goal-chart = Progress over time
goal-quick-label = Today's measurement
goal-quick-add = Add
goal-milestones = Milestones
goal-milestones-none = No milestones set.
goal-milestone-reached = Reached
goal-milestone-open = Not reached yet
goal-milestone-due = Not reached yet, due { $date }

## Conflicts: a field changed on two devices at once
conflicts-title = Changes made at the same time
conflicts-intro = These were changed on two devices at the same time. Both are kept until you choose the one that is right.
conflicts-none = Nothing to choose: no field was changed on two devices at once.
conflicts-heading = { $field } of { $entry } ({ $section })
conflicts-by = Written by { $name }
conflicts-by-when = Written by { $name }, { $when }
conflicts-keep = Keep this one
conflicts-gone = That choice is no longer open: it may have been settled already. Here is what is left.
home-conflicts = { $count ->
    [one] One change was made on two devices at once: choose which to keep
   *[other] { $count } changes were made on two devices at once: choose which to keep
}
history-resolve = Chose one of two values changed at once

## Messages by thread
messages-new = Start a new conversation
messages-subject = Subject
messages-body = Message
messages-reply = Your reply
messages-send = Send
messages-all = All conversations
messages-no-subject = (no subject)
messages-needs-subject = A new conversation needs a subject.
messages-count = { $count ->
    [one] One message
   *[other] { $count } messages
}
messages-latest = latest from { $name }, { $when }
messages-sent-by = { $from } (sent by { $name })

## Values
value-yes = Yes
value-no = No
value-none = —

## Signing in and out
login-title = Sign in
login-done = You are signed in.
login-bad-link = This sign-in link is not valid or was already used. Start the portal again (phr portal) for a new link.
login-needed = You are not signed in, or you were signed out after a while without use. Open the sign-in link that phr portal printed, or start it again for a new one.
logout-done = You are signed out. To come back, start the portal again (phr portal) and open the new link.

## Errors
error-title = Something went wrong
error-not-found = There is no such page.
error-wrong-host = This address is not the one the portal was started for.
error-cross-site = This request came from another site and was refused.
error-too-large = What was sent is too large.
error-internal = The record could not be read or written. Nothing was changed.
error-back-home = Go to the home page

## Field labels (field-SECTION-FIELD) and their help lines (.hint)
## profile
field-profile-name = Name
    .hint = Patient's full name
field-profile-dob = Date of birth
    .hint = Date of birth
field-profile-sex = Sex
    .hint = Sex
field-profile-gender = Gender
    .hint = Gender identity
field-profile-language = Language
    .hint = Preferred language
field-profile-phone = Phone
    .hint = Phone number
field-profile-email = Email
    .hint = Email address
field-profile-address = Address
    .hint = Home address
field-profile-school = School
    .hint = School and grade
field-profile-guardian = Guardian
    .hint = Legal guardian (for a minor)
field-profile-contact = Contact
    .hint = Emergency contact

## conditions
field-conditions-name = Name
    .hint = Diagnosis or condition
field-conditions-code = Code
    .hint = ICD-10 or SNOMED code
field-conditions-status = Status
    .hint = Clinical status (default active)
field-conditions-onset = Onset
    .hint = When it started
field-conditions-resolved = Resolved
    .hint = When it resolved
field-conditions-notes = Notes
    .hint = Notes

## allergies
field-allergies-substance = Substance
    .hint = What the patient reacts to
field-allergies-reaction = Reaction
    .hint = What happens
field-allergies-severity = Severity
    .hint = Severity
field-allergies-status = Status
    .hint = Status (default active)
field-allergies-recorded = Recorded
    .hint = When it was noted
field-allergies-notes = Notes
    .hint = Notes

## medications
field-medications-name = Name
    .hint = Drug name
field-medications-dose = Dose
    .hint = Dose, e.g. 250 mg
field-medications-schedule = Schedule
    .hint = E.g. twice daily
field-medications-route = Route
    .hint = Oral, topical, …
field-medications-prescriber = Prescriber
    .hint = Who prescribed it
field-medications-reason = Reason
    .hint = Why it is taken
field-medications-started = Started
    .hint = Start date
field-medications-notes = Notes
    .hint = Notes
# Kept beside a medication's fields when it is stopped (no form sets them directly).
field-medications-status = Status
field-medications-stopped = Stopped on
field-medications-stop-reason = Why it was stopped

## labs
field-labs-test = Test
    .hint = Test name
field-labs-value = Value
    .hint = Result value
field-labs-unit = Unit
    .hint = Unit, e.g. mg/dL
field-labs-low = Low
    .hint = Reference range low
field-labs-high = High
    .hint = Reference range high
field-labs-range = Range
    .hint = Reference range as text, when not numeric
field-labs-date = Date
    .hint = Collection date
field-labs-code = LOINC code
    .hint = LOINC code
field-labs-interpretation = Interpretation
    .hint = Flag
field-labs-notes = Notes
    .hint = Notes

## notes
field-notes-discipline = Discipline
    .hint = Therapy discipline
field-notes-clinician = Clinician
    .hint = Who led the session
field-notes-date = Date
    .hint = Session date
field-notes-minutes = Minutes in session
    .hint = Session length
field-notes-subjective = What the family reports (S)
    .hint = S: what the family reports
field-notes-objective = What was measured (O)
    .hint = O: what was measured
field-notes-assessment = Clinician's assessment (A)
    .hint = A: clinician's assessment
field-notes-plan = Next steps (P)
    .hint = P: next steps

## goals
field-goals-goal = Goal
    .hint = The goal
field-goals-discipline = Discipline
    .hint = Therapy discipline
field-goals-target-date = Date to reach it by
    .hint = When it should be met
field-goals-status = Status
    .hint = Status (default active)
field-goals-baseline = Baseline
    .hint = Starting measure
field-goals-target = Target
    .hint = Target measure
field-goals-unit = Unit
    .hint = Unit of measure, e.g. % correct
field-goals-milestone = Milestone
    .hint = A milestone on the way

## plans
field-plans-title = Title
    .hint = Plan title
field-plans-discipline = Discipline
    .hint = Therapy discipline
field-plans-start = Start
    .hint = Start date
field-plans-end = End
    .hint = End date
field-plans-frequency = Frequency
    .hint = E.g. 2x weekly, 45 min
field-plans-status = Status
    .hint = Status (default active)
field-plans-goal = Goal
    .hint = Id of a goal this plan serves
field-plans-description = Description
    .hint = The plan

## documents
field-documents-title = Title
    .hint = Document title
field-documents-kind = Kind
    .hint = Kind (default other)
field-documents-date = Date
    .hint = Document date
field-documents-description = Description
    .hint = What it is
field-documents-media-type = File type
    .hint = MIME type of the attached file

## insurance
field-insurance-payer = Payer
    .hint = Insurance company
field-insurance-member-id = Member ID
    .hint = Member id
field-insurance-group = Group
    .hint = Group number
field-insurance-plan = Plan
    .hint = Plan name
field-insurance-subscriber = Subscriber
    .hint = Policy holder
field-insurance-relationship = Relationship
    .hint = Patient's relationship to the subscriber
field-insurance-start = Start
    .hint = Coverage start
field-insurance-end = End
    .hint = Coverage end

## appointments
field-appointments-reason = Reason
    .hint = What the visit is for
field-appointments-start = Date and time
    .hint = Date and time
field-appointments-minutes = Minutes
    .hint = Length
field-appointments-status = Status
    .hint = Status (default requested)
field-appointments-discipline = Discipline
    .hint = Therapy discipline
field-appointments-clinician = Clinician
    .hint = With whom
field-appointments-location = Location
    .hint = Where
field-appointments-notes = Notes
    .hint = Notes

## messages
field-messages-thread = Thread
    .hint = Thread subject
field-messages-body = Body
    .hint = Message text
field-messages-from = From
    .hint = Sender's name
field-messages-to = To
    .hint = Recipient

## forms
field-forms-title = Title
    .hint = Form title
field-forms-kind = Kind
    .hint = Template or response (default template)
field-forms-template = Template
    .hint = Id of the template a response answers
field-forms-status = Status
    .hint = Status
field-forms-question = Question
    .hint = A question of a template
field-forms-answer = Answer
    .hint = An answer of a response

## caregiver_log
field-caregiver-log-date = Date
    .hint = Day of the observation
field-caregiver-log-text = Text
    .hint = What happened
field-caregiver-log-category = Category
    .hint = Category
field-caregiver-log-minutes = Minutes
    .hint = Duration
field-caregiver-log-by = By
    .hint = Who logged it

## procedures
field-procedures-name = Procedure
    .hint = The procedure
field-procedures-code = Code
    .hint = Code as system|code, e.g. http://snomed.info/sct|117015009
field-procedures-status = Status
    .hint = Status (default completed)
field-procedures-date = Date
    .hint = When it was done, or began
field-procedures-end = Ended
    .hint = When it ended
field-procedures-reason = Reason
    .hint = Why it was done
field-procedures-status-reason = Why not done or stopped
    .hint = Why it was not done, or stopped
field-procedures-performer = Done by
    .hint = Who did it
field-procedures-location = Where
    .hint = Where
field-procedures-notes = Notes
    .hint = Notes

## immunizations
field-immunizations-vaccine = Vaccine
    .hint = The vaccine
field-immunizations-code = Code
    .hint = Code as system|code, e.g. http://hl7.org/fhir/sid/cvx|20
field-immunizations-status = Status
    .hint = Given (completed, the default) or not done
field-immunizations-date = Date
    .hint = When it was given
field-immunizations-when = When, in words
    .hint = When, in words, if no date is known
field-immunizations-not-given-reason = Why not given
    .hint = Why it was not given (status not done)
field-immunizations-dose = Dose
    .hint = Which dose of the series, e.g. 2
field-immunizations-lot = Lot number
    .hint = Lot number
field-immunizations-site = Site
    .hint = Where on the body, e.g. left arm
field-immunizations-route = Route
    .hint = Intramuscular, oral, …
field-immunizations-performer = Given by
    .hint = Who gave it
field-immunizations-location = Where
    .hint = Where
field-immunizations-notes = Notes
    .hint = Notes

## vitals
field-vitals-name = Measurement
    .hint = What was measured, e.g. Body weight
field-vitals-code = Code
    .hint = Code as system|code, e.g. http://loinc.org|29463-7
field-vitals-date = Date
    .hint = When it was measured
field-vitals-value = Value
    .hint = The value, as written
field-vitals-unit = Unit
    .hint = Unit, e.g. kg
field-vitals-component = Part
    .hint = One part of a measurement with parts: name=Systolic; value=120; unit=mm[Hg]
field-vitals-notes = Notes
    .hint = Notes

## encounters
field-encounters-type = Kind of visit
    .hint = Kind of visit, e.g. Well child visit
field-encounters-code = Code
    .hint = Code of the kind of visit as system|code
field-encounters-class = Setting
    .hint = Setting as an HL7 ActCode: AMB (clinic), EMER, IMP (inpatient), HH (home), VR (video), …
field-encounters-status = Status
    .hint = Status (default finished)
field-encounters-start = Began
    .hint = When it began
field-encounters-end = Ended
    .hint = When it ended
field-encounters-reason = Reason
    .hint = Why
field-encounters-clinician = Clinician
    .hint = Who saw the patient
field-encounters-location = Where
    .hint = Where
field-encounters-notes = Notes
    .hint = Notes

## care_team
field-care-team-name = Name
    .hint = The person, team or organisation
field-care-team-role = Role
    .hint = Their role or kind of care, e.g. pediatrician
field-care-team-organization = Organisation
    .hint = Practice, hospital or agency
field-care-team-phone = Phone
    .hint = Phone number
field-care-team-email = Email
    .hint = Email address
field-care-team-status = Status
    .hint = Status (default active)
field-care-team-start = Since
    .hint = Caring since
field-care-team-end = Until
    .hint = Caring until
field-care-team-member = Member
    .hint = A member of a team: name=…; role=…; organization=…; phone=…; email=…
field-care-team-reason = Cares for
    .hint = What they care for
field-care-team-notes = Notes
    .hint = Notes

## audit
field-audit-kind = Kind
    .hint = What happened: grant, revoke, join, sync, reject, export, remove
field-audit-detail = Detail
    .hint = In words
field-audit-subject = Subject
    .hint = Key or id the event concerns
field-audit-section = Section
    .hint = Sections involved

## Words a choice field may hold
choice-aba = ABA
choice-abnormal = Abnormal
choice-active = Active
choice-arrived = Arrived
choice-assessment = Assessment
choice-behavior = Behavior
choice-cancelled = Cancelled
choice-completed = Completed
choice-confirmed = Confirmed
choice-critical = Critical
choice-date = Date
choice-discontinued = Discontinued
choice-draft = Draft
choice-female = Female
choice-finished = Finished
choice-high = High
choice-iep = IEP
choice-in-progress = In progress
choice-inactive = Inactive
choice-insurance-card = Insurance card
choice-low = Low
choice-male = Male
choice-meals = Meals
choice-medical = Medical
choice-medication = Medication
choice-met = Met
choice-mild = Mild
choice-moderate = Moderate
choice-mood = Mood
choice-multidisciplinary = Multidisciplinary
choice-normal = Normal
choice-not-done = Not done
choice-number = Number
choice-occupational = Occupational
choice-on-hold = On hold
choice-onleave = On leave
choice-other = Other
choice-physical = Physical
choice-planned = Planned
choice-practice = Practice
choice-preparation = Preparation
choice-proposed = Proposed
choice-psychology = Psychology
choice-report = Report
choice-requested = Requested
choice-resolved = Resolved
choice-response = Response
choice-revoked = Revoked
choice-scheduled = Scheduled
choice-sent = Sent
choice-severe = Severe
choice-sleep = Sleep
choice-speech = Speech
choice-stopped = Stopped
choice-suspended = Suspended
choice-template = Template
choice-text = Text
choice-triaged = Triaged
choice-unknown = Unknown
choice-yesno = Yes or no

## Sharing, devices and the activity log
nav-sharing = Sharing
nav-devices = Devices
nav-activity = Activity log
sharing-title = Who can see this record
sharing-intro = Share the record with someone who helps: a grandparent, a sitter, a school team or a clinic. You choose what they see and until when, and you can take it away at any time.
sharing-unavailable = Sharing and adding devices work when the record is served with phr serve --portal or phr portal.
sharing-add = Share with someone
sharing-who = People you share with
sharing-none = You do not share this record with anyone.
sharing-active = Can see it now
sharing-expired = Ended
sharing-revoked = Taken away
# $when: the day and time access ends
sharing-until = until { $when }
sharing-no-end = no end date
# $name: who the access is for
sharing-revoke = Stop sharing with { $name }
share-right-none = Not shared
share-right-read = Can see
share-right-progress = Can see and record progress
share-right-request = Can see and ask for appointments
share-right-write = Can see and change
share-title = Share with someone
share-intro = Choose who it is for and a starting point, then change any section below if you like (leave "Choose…" to keep the starting point's choice). You get a code to scan on their phone; it works once, for 30 minutes.
share-label = Who it is for
    .hint = For example Grandma, or Lincoln Elementary IEP team
share-preset = Starting point
    .hint = A caregiver sees everything but insurance and can add to the caregivers' log; a school sees goals, notes and documents; a clinic sees and writes clinical sections.
share-preset-caregiver = A caregiver (family, a sitter)
share-preset-school = A school team
share-preset-clinic = A clinic
share-days = For how many days
    .hint = Leave empty for the starting point's length (a school: one year; others: until you take it away). At most 3650.
share-label-needed = Say who it is for (at most 100 characters).
share-preset-needed = Choose a starting point.
share-days-range = Write a number of days from 1 to 3650, or leave it empty.
share-nothing = This would share no section: choose at least one.
# $name: who the share is for
offer-share-title = Share with { $name }
offer-device-title = Add a device
offer-share-how = On their phone or computer, scan this code with the health record app, or copy the text below into it (with the command line: phr join followed by the text).
offer-device-how = On the new device, scan this code with the health record app, or copy the text below into it (with the command line: phr devices join followed by the text).
offer-qr-alt = QR code of the one-time code below
offer-ticket = The code as text
offer-ticket-hint = Select it to copy it. Anyone who has it can use it once, so send it only to them.
# $when: the day and time the code stops working
offer-waiting = Waiting for it to be used. It works once, until { $when }.
# $name: who used the code; $when: when
offer-used = { $name } joined on { $when }.
offer-expired = This code has expired without being used. Make a new one if you still need it.
offer-back-sharing = Back to sharing
offer-back-devices = Back to devices
revoke-title = Stop sharing
# $name: who the access is for
revoke-what = { $name } will no longer see this record or add to it. Every device of the record refuses them as soon as it hears of it.
revoke-kept = What they already saw stays with them; what they wrote before now stays in the record.
# $name: who the access is for
revoke-button = Stop sharing with { $name }
devices-title = Your devices
devices-intro = The phones and computers that hold the whole record. Add one with a one-time code; remove one you lost or gave away.
devices-heading = Devices
devices-add = Add a device
devices-add-what = You will get a one-time code to scan on the new device. It works once, for 30 minutes.
devices-add-trust = The new device can see and change the whole record, as this one can. Add only your own devices.
devices-add-button = Make a code
devices-this = This device
devices-active = Can sync
devices-removed = Removed
# $when: when it was added
devices-added = added { $when }
# $name: the device's name
devices-remove = Remove { $name }
devices-remove-title = Remove a device
# $name: the device's name
devices-remove-what = { $name } will no longer sync with the record, and changes it makes from now on are refused everywhere.
activity-title = Activity log
activity-who = Who
activity-what = What
activity-anyone = Anyone
activity-anything = Anything
activity-show = Show
# $count: how many events are shown
activity-count = { $count ->
    [0] No events.
    [one] One event.
   *[other] { $count } events.
}
activity-kind-grant = Shared
activity-kind-revoke = Stopped sharing
activity-kind-join = Device added
activity-kind-remove = Device removed
activity-kind-sync = Synced
activity-kind-reject = Change refused
activity-kind-export = Exported
activity-kind-import = Imported
activity-kind-attachment = File sent

## Typing the passphrase again before a sensitive act
confirm-title = Type your passphrase
# $minutes: how long it stays confirmed
confirm-intro = Sharing, adding or removing a device, stopping a share, exporting and restoring need the record's passphrase again. It stays confirmed for { $minutes } minutes.
confirm-passphrase = Passphrase
confirm-wrong = That is not the record's passphrase. Nothing was changed.
# $seconds: how long to wait
confirm-wait = Too many wrong passphrases. Wait { $seconds ->
    [one] one second
   *[other] { $seconds } seconds
} before trying again. Nothing was changed.

## Signing out after a while without use
# $when: the day and time the session ends
idle-ends = If you do nothing, you will be signed out on { $when }.
# {left} is replaced by the minutes and seconds left (m:ss), by the page's script.
idle-warning = You will be signed out in { "{left}" } if you do nothing.
idle-stay = Stay signed in
