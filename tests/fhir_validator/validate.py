"""Validate FHIR R4 JSON the way the tests need: is what phr writes valid R4?

Usage: validate.py FILE...   (each a JSON resource or Bundle, or an array of them, `-` standard
input)

Every resource (a Bundle, each of its entries' resources, each contained resource) is checked
against fhir.resources' R4B models (the R4B structure definitions: cardinality, types, primitive
formats such as an `instant`'s required zone). On top of that, the checks the models do not do:

- FHIR JSON has no empty or null values: no `null`, `""`, `[]` or `{}` anywhere;
- every reference in a Bundle resolves: a `urn:` reference to an entry's fullUrl, a relative
  `Type/id` to an entry with that type and id, `#id` to a contained resource; an absolute
  `http(s)` reference may point outside the Bundle;
- the Bundle rules bdl-1 (total only in searchsets and histories), bdl-2 (search only in
  searchsets), bdl-3 (request only in batches, transactions and histories), bdl-7 (fullUrls
  unique);
- the codes of required bindings for the elements phr writes (`REQUIRED_CODES`,
  `REQUIRED_CONCEPTS`) and of the data types' (`DATATYPE_CODES`: telecom, name, address,
  identifier, narrative; Quantity.comparator), which the models take as any code;
- the Appointment rules app-1 (a participant has a type or an actor), app-2 (start and end
  together or neither), app-3 (only proposed or cancelled appointments may lack start and end).

Each problem is printed as one line, `FILE: PATH: MESSAGE` (PATH such as
`Bundle.entry[3].resource.start`), and the exit code is 1 if there was any, 2 if a file could
not be read as JSON, 0 otherwise.
"""

import json
import re
import sys

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

# Required bindings of the elements phr writes: resource type, dotted path (arrays walked
# through), the allowed codes.
REQUIRED_CODES = {
    ("Appointment", "status"): "proposed pending booked arrived fulfilled cancelled noshow "
    "entered-in-error checked-in waitlist",
    ("Appointment", "participant.status"): "accepted declined tentative needs-action",
    ("Appointment", "participant.required"): "required optional information-only",
    ("Observation", "status"): "registered preliminary final amended corrected cancelled "
    "entered-in-error unknown",
    ("Communication", "status"): "preparation in-progress not-done on-hold stopped completed "
    "entered-in-error unknown",
    ("DocumentReference", "status"): "current superseded entered-in-error",
    ("DocumentReference", "docStatus"): "preliminary final amended entered-in-error",
    ("Questionnaire", "status"): "draft active retired unknown",
    ("Questionnaire", "item.type"): "group display boolean decimal integer date dateTime time "
    "string text url choice open-choice attachment reference quantity",
    ("Questionnaire", "item.item.type"): "group display boolean decimal integer date dateTime "
    "time string text url choice open-choice attachment reference quantity",
    ("QuestionnaireResponse", "status"): "in-progress completed amended entered-in-error stopped",
    ("Goal", "lifecycleStatus"): "proposed planned accepted active on-hold completed cancelled "
    "entered-in-error rejected",
    ("CarePlan", "status"): "draft active on-hold revoked completed entered-in-error unknown",
    ("CarePlan", "intent"): "proposal plan order option",
    ("CarePlan", "activity.detail.status"): "not-started scheduled in-progress on-hold completed "
    "cancelled stopped unknown entered-in-error",
    ("Coverage", "status"): "active cancelled draft entered-in-error",
    ("MedicationStatement", "status"): "active completed entered-in-error intended stopped "
    "on-hold unknown not-taken",
    ("Patient", "gender"): "male female other unknown",
    ("AllergyIntolerance", "type"): "allergy intolerance",
    ("AllergyIntolerance", "category"): "food medication environment biologic",
    ("AllergyIntolerance", "criticality"): "low high unable-to-assess",
    ("AllergyIntolerance", "reaction.severity"): "mild moderate severe",
    ("Bundle", "type"): "document message transaction transaction-response batch "
    "batch-response history searchset collection",
    ("Bundle", "entry.search.mode"): "match include outcome",
    ("OperationOutcome", "issue.severity"): "fatal error warning information",
    ("OperationOutcome", "issue.code"): "invalid structure required value invariant security "
    "login unknown expired forbidden suppressed processing not-supported duplicate "
    "multiple-matches not-found deleted too-long code-invalid extension too-costly "
    "business-rule conflict transient lock-error no-store exception timeout incomplete "
    "throttled informational",
}

# Required bindings whose element is a CodeableConcept: one coding of the system, with a code
# of the list.
REQUIRED_CONCEPTS = {
    ("Condition", "clinicalStatus"): (
        "http://terminology.hl7.org/CodeSystem/condition-clinical",
        "active recurrence relapse inactive remission resolved",
    ),
    ("Condition", "verificationStatus"): (
        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
        "unconfirmed provisional differential confirmed refuted entered-in-error",
    ),
    ("AllergyIntolerance", "clinicalStatus"): (
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        "active inactive resolved",
    ),
    ("AllergyIntolerance", "verificationStatus"): (
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
        "unconfirmed confirmed refuted entered-in-error",
    ),
}

# Required bindings of data types, wherever they are used: the key holding the data type (a
# list or a single value), the data type's element, the allowed codes.
DATATYPE_CODES = [
    ("telecom", "system", "phone fax email pager url sms other"),
    ("telecom", "use", "home work temp old mobile"),
    ("name", "use", "usual official temp nickname anonymous old maiden"),
    ("address", "use", "home work temp old billing"),
    ("address", "type", "postal physical both"),
    ("identifier", "use", "usual official temp secondary old"),
    ("text", "status", "generated extensions additional empty"),
]
QUANTITY_COMPARATORS = "< <= >= >"

ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def main(argv):
    if len(argv) < 2:
        print("usage: validate.py FILE...", file=sys.stderr)
        return 2
    failed = False
    for name in argv[1:]:
        try:
            if name == "-":
                value = json.load(sys.stdin)
            else:
                with open(name, encoding="utf-8") as f:
                    value = json.load(f)
        except (OSError, ValueError) as e:
            print(f"{name}: not readable as JSON: {e}")
            return 2
        for path, message in problems(value):
            failed = True
            print(f"{name}: {path}: {message}")
    return 1 if failed else 0


def problems(value):
    """Every problem of a resource or Bundle (or of each in a JSON array of them, their paths
    starting `[i]`), as (path, message)."""
    if isinstance(value, list):
        return [(f"[{i}] {path}", message) for i, item in enumerate(value) for path, message in problems(item)]
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return [("(root)", "is not a FHIR resource: a JSON object with a resourceType")]
    out = list(empty_values(value, value["resourceType"]))
    out += resource_problems(value, value["resourceType"])
    if value["resourceType"] == "Bundle":
        out += bundle_problems(value)
    return out


def empty_values(value, path):
    """FHIR JSON never has null, empty strings, arrays or objects."""
    if value is None:
        yield path, "is null; FHIR JSON leaves an absent element out"
    elif isinstance(value, str) and value.strip() == "":
        yield path, "is an empty string; FHIR JSON leaves an absent element out"
    elif isinstance(value, list):
        if not value:
            yield path, "is an empty array; FHIR JSON leaves an absent element out"
        for i, item in enumerate(value):
            yield from empty_values(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        if not value:
            yield path, "is an empty object; FHIR JSON leaves an absent element out"
        for key, item in value.items():
            yield from empty_values(item, f"{path}.{key}")


def resource_problems(res, path):
    """One resource against its R4B model and our extra rules, then its contained resources."""
    ty = res.get("resourceType")
    try:
        model = get_fhir_model_class(ty)
    except (KeyError, ValueError, TypeError):
        return [(f"{path}.resourceType", f"`{ty}` is not an R4B resource type")]
    out = []
    try:
        model.model_validate(res)
    except ValidationError as e:
        for err in e.errors():
            out.append((located(path, err["loc"]), err["msg"]))
    except Exception as e:  # the models raise a few plain errors of their own
        out.append((path, f"{type(e).__name__}: {e}"))
    out += required_codes(res, ty, path)
    out += list(datatype_codes(res, path))
    if ty == "Appointment":
        out += appointment_rules(res, path)
    contained = res.get("contained")
    contained_ids = set()
    if isinstance(contained, list):
        for i, inner in enumerate(contained):
            if isinstance(inner, dict):
                contained_ids.add(inner.get("id"))
                out += resource_problems(inner, f"{path}.contained[{i}]")
    # A Bundle's entries are resources of their own, checked by bundle_problems.
    for ref_path, ref in references(res, path) if ty != "Bundle" else []:
        if ref.startswith("#") and ref[1:] not in contained_ids and ref != "#":
            out.append((ref_path, f"`{ref}` names no contained resource"))
    return out


def located(path, loc):
    out = path
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}"
    return out


def walk(value, keys, path):
    """The values at a dotted path, arrays walked through, with their paths."""
    if not keys:
        yield path, value
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, keys, f"{path}[{i}]")
    elif isinstance(value, dict) and keys[0] in value:
        yield from walk(value[keys[0]], keys[1:], f"{path}.{keys[0]}")


def required_codes(res, ty, path):
    out = []
    for (rtype, dotted), codes in REQUIRED_CODES.items():
        if rtype != ty:
            continue
        for at, value in walk(res, dotted.split("."), path):
            for i, code in enumerate(value if isinstance(value, list) else [value]):
                where = f"{at}[{i}]" if isinstance(value, list) else at
                if code not in codes.split():
                    out.append((where, f"`{code}` is not a code of the required value set: {codes}"))
    for (rtype, dotted), (system, codes) in REQUIRED_CONCEPTS.items():
        if rtype != ty:
            continue
        for at, concept in walk(res, dotted.split("."), path):
            codings = concept.get("coding", []) if isinstance(concept, dict) else []
            if not any(
                isinstance(c, dict) and c.get("system") == system and c.get("code") in codes.split()
                for c in codings
            ):
                out.append((at, f"has no coding of {system} with a code of: {codes}"))
    return out


def datatype_codes(value, path):
    """The required codes of `DATATYPE_CODES` and Quantity.comparator, anywhere in a resource
    (not entering contained resources, which are checked on their own)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from datatype_codes(item, f"{path}[{i}]")
        return
    if not isinstance(value, dict):
        return
    comparator = value.get("comparator")
    if "value" in value and comparator is not None and comparator not in QUANTITY_COMPARATORS.split():
        yield f"{path}.comparator", f"`{comparator}` is not a quantity comparator: {QUANTITY_COMPARATORS}"
    for key, item in value.items():
        if key in ("contained", "resource"):
            continue
        for holder, element, codes in DATATYPE_CODES:
            if key != holder:
                continue
            for i, datum in enumerate(item if isinstance(item, list) else [item]):
                at = f"{path}.{key}[{i}]" if isinstance(item, list) else f"{path}.{key}"
                code = datum.get(element) if isinstance(datum, dict) else None
                if isinstance(code, str) and code not in codes.split():
                    yield f"{at}.{element}", f"`{code}` is not a code of the required value set: {codes}"
        yield from datatype_codes(item, f"{path}.{key}")


def appointment_rules(res, path):
    out = []
    for i, p in enumerate(res.get("participant") or []):
        if isinstance(p, dict) and "type" not in p and "actor" not in p:
            out.append((f"{path}.participant[{i}]", "has neither type nor actor (app-1)"))
    has_start, has_end = "start" in res, "end" in res
    if has_start != has_end:
        out.append((path, "has start or end without the other (app-2)"))
    if not (has_start and has_end) and res.get("status") not in ("proposed", "cancelled", "waitlist"):
        out.append((path, f"is `{res.get('status')}` without start and end (app-3)"))
    return out


def references(value, path):
    """Every Reference.reference string under a resource, not entering contained resources."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from references(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "contained":
                continue
            if key == "reference" and isinstance(item, str):
                yield f"{path}.reference", item
            else:
                yield from references(item, f"{path}.{key}")


def bundle_problems(bundle):
    out = []
    ty = bundle.get("type")
    entries = bundle.get("entry") if isinstance(bundle.get("entry"), list) else []
    if "total" in bundle and ty not in ("searchset", "history"):
        out.append(("Bundle.total", f"is only for searchsets and histories, not `{ty}` (bdl-1)"))
    full_urls = {}
    by_type_id = set()
    for i, entry in enumerate(entries):
        at = f"Bundle.entry[{i}]"
        if not isinstance(entry, dict):
            out.append((at, "is not a JSON object"))
            continue
        if "resource" in entry and not isinstance(entry["resource"], dict):
            out.append((f"{at}.resource", "is not a JSON object"))
        if "search" in entry and ty != "searchset":
            out.append((f"{at}.search", f"is only for searchsets, not `{ty}` (bdl-2)"))
        if "request" in entry and ty not in ("batch", "transaction", "history"):
            out.append((f"{at}.request", f"is only for batches, transactions and histories (bdl-3)"))
        url = entry.get("fullUrl")
        if isinstance(url, str):
            if url in full_urls:
                out.append((f"{at}.fullUrl", f"`{url}` is also entry[{full_urls[url]}]'s (bdl-7)"))
            full_urls.setdefault(url, i)
        res = entry.get("resource")
        if isinstance(res, dict):
            by_type_id.add(f"{res.get('resourceType')}/{res.get('id')}")
            out += resource_problems(res, f"{at}.resource")
    for i, entry in enumerate(entries):
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict):
            continue
        for ref_path, ref in references(res, f"Bundle.entry[{i}].resource"):
            if ref.startswith("#") or ref in full_urls:
                continue
            if ref.startswith("urn:"):
                out.append((ref_path, f"`{ref}` is no entry's fullUrl"))
            elif not ABSOLUTE.match(ref) and ref not in by_type_id:
                out.append((ref_path, f"`{ref}` is no entry of the Bundle"))
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv))
