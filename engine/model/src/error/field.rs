//! What is wrong with a field or a whole entry (`Error::InvalidField`, `Error::InvalidEntry`):
//! one kind per rule, with the values it concerns, so a form can show it beside the field in
//! the reader's language.

/// Why a field's value does not fit the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    /// A field every entry of the section must have is not there.
    #[error("is required")]
    Missing,
    /// The field needs text and has none.
    #[error("must not be empty")]
    Empty,
    /// Text that is not a date.
    #[error("`{given}` is not a valid date: use YYYY-MM-DD")]
    NotADate {
        /// What was given.
        given: String,
    },
    /// Text that is not a date at a year's, month's or day's precision.
    #[error("`{given}` is not a date: use YYYY, YYYY-MM or YYYY-MM-DD")]
    NotAPartialDate {
        /// What was given.
        given: String,
    },
    /// Text that is not a date and time.
    #[error("`{given}` is not a date and time: use YYYY-MM-DD HH:MM")]
    NotADateTime {
        /// What was given.
        given: String,
    },
    /// Text that is not a number.
    #[error("`{given}` is not a number")]
    NotANumber {
        /// What was given.
        given: String,
    },
    /// A number that is infinite or not a number.
    #[error("`{given}` is not a finite number")]
    NotFinite {
        /// What was given.
        given: String,
    },
    /// Text that is neither yes nor no.
    #[error("`{given}` is not yes or no")]
    NotYesOrNo {
        /// What was given.
        given: String,
    },
    /// A value that is not one of the field's choices.
    #[error("`{given}` is not one of: {}", .options.join(", "))]
    NotAChoice {
        /// What was given.
        given: String,
        /// The choices.
        options: &'static [&'static str],
    },
    /// A part of a list item (`key=value`) the item does not have.
    #[error("unknown part `{given}`; parts are: {}", .parts.join(", "))]
    UnknownPart {
        /// The part given.
        given: String,
        /// The parts an item has.
        parts: Vec<&'static str>,
    },
    /// A list item without one of its required parts.
    #[error("each item needs `{part}=`")]
    MissingPart {
        /// The part missing.
        part: &'static str,
    },
    /// A field that must hold text holds something else.
    #[error("must be text")]
    NotText,
    /// An amendment without text.
    #[error("an amendment needs text")]
    EmptyAmendment,
    /// An attachment written by a newer phr.
    #[error("blob format {found} is not one this phr reads (it reads {reads}): upgrade phr")]
    BlobFormat {
        /// The format in the entry.
        found: u64,
        /// The format this phr reads.
        reads: u64,
    },
    /// An attachment's chunk size outside the sizes phr uses.
    #[error("chunk size {size} is outside {min}..={max}")]
    ChunkSize {
        /// The size in the entry.
        size: u64,
        /// Smallest chunk.
        min: u64,
        /// Largest chunk.
        max: u64,
    },
    /// An attachment larger than phr keeps.
    #[error("size {size} is beyond the {max} byte limit")]
    FileTooLarge {
        /// The size in the entry.
        size: u64,
        /// The largest size.
        max: u64,
    },
    /// An attachment's media type that is empty or too long.
    #[error("the media type must be 1 to {max} characters")]
    MediaTypeLength {
        /// The most characters allowed.
        max: usize,
    },
    /// An attachment's file name that is too long.
    #[error("the file name is longer than {max} bytes")]
    FileNameLength {
        /// The most bytes allowed.
        max: usize,
    },
}

/// Why an entry fails validation as a whole (its rules span fields, or its shape is wrong).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// A condition resolved before its onset.
    #[error("resolved date is before onset")]
    ResolvedBeforeOnset,
    /// A medication marked stopped without its stop date.
    #[error("a stopped medication needs its stop date")]
    StoppedWithoutDate,
    /// A medication stopped before it started.
    #[error("stop date is before start date")]
    StopBeforeStart,
    /// A lab's reference range upside down.
    #[error("reference range low is above high")]
    RangeUpsideDown,
    /// A session note with none of its four parts.
    #[error("a session note needs at least one of subjective, objective, assessment, plan")]
    EmptyNote,
    /// Something that ends before it starts.
    #[error("end date is before start date")]
    EndBeforeStart,
    /// A form response that does not name its form.
    #[error("a form response must name its template")]
    ResponseWithoutTemplate,
    /// A reason a vaccine was not given, on one that was given.
    #[error("a reason not given belongs to an immunization whose status is not-done")]
    ReasonButGiven,
    /// A vital sign with neither a value nor a component.
    #[error("a vital sign needs a value or at least one component")]
    NoVitalValue,
    /// A field the record holds as a list that is something else in this entry.
    #[error("`{field}` is not a list")]
    NotAList {
        /// The field.
        field: String,
    },
    /// Fields that do not make the section's entry: a missing field, a value of the wrong type
    /// (the JSON decoder's own description).
    #[error("{detail}")]
    Shape {
        /// The decoder's description, e.g. "missing field `name`".
        detail: String,
    },
}
