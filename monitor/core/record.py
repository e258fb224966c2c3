"""What ctmonitor reads of a ClinicalTrials.gov v2 study record, declared once. Pure.

Every field `monitor.core.normalize` and `monitor.core.protocol` read is declared here as
a typed msgspec structure, and nothing else: a record's bytes are decoded straight into
them, in C, skipping every field not declared (results, contacts, the derived
sections' other modules...), so normalizing reads attributes instead of walking dicts
and no field is read that was not declared here.

The declarations follow the API's own schema (the OpenAPI spec's `Study` model), with
the tolerance a registry of 25 years of records needs: every module and field may be
absent (old and observational records leave whole modules out), every field may be
`null`, and numbers and booleans written as strings are read as such (`strict=False`:
`"30"` is an enrollment of 30). Anything else of the wrong type (a title that is an
object, a site list that is a string) is refused with a `RecordError` that names the
study and the field (`$.protocolSection.statusModule.overallStatus`): a record of an
unexpected shape is never half-read.

Text is kept exactly as sent: the decoder does not touch a character of it.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any

import msgspec
from msgspec import Struct, field

from monitor.core.domain import NCT_RE

Text = str | None


class RecordError(ValueError):
    """A study record without the minimum we need (an NCT id), or of the wrong shape."""


class _Part(Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    """A part of a record: every field optional, unknown fields skipped."""


# -- protocolSection -------------------------------------------------------------------


class SecondaryId(_Part):
    id: Text = None
    type: Text = None
    domain: Text = None


class Identification(_Part):
    nctId: Text = None
    briefTitle: Text = None
    officialTitle: Text = None
    acronym: Text = None
    nctIdAliases: list[Text] | None = None
    secondaryIdInfos: list[SecondaryId] | None = None


class DateStruct(_Part):
    date: Text = None
    type: Text = None


class Status(_Part):
    overallStatus: Text = None
    lastKnownStatus: Text = None
    whyStopped: Text = None
    statusVerifiedDate: Text = None
    startDateStruct: DateStruct | None = None
    primaryCompletionDateStruct: DateStruct | None = None
    completionDateStruct: DateStruct | None = None
    studyFirstPostDateStruct: DateStruct | None = None
    resultsFirstPostDateStruct: DateStruct | None = None
    lastUpdatePostDateStruct: DateStruct | None = None
    lastUpdateSubmitDate: Text = None


class Sponsor(_Part):
    name: Text = None
    sponsor_class: Text = field(default=None, name="class")


class Sponsors(_Part):
    leadSponsor: Sponsor | None = None
    collaborators: list[Sponsor | None] | None = None


class Conditions(_Part):
    conditions: list[Text] | None = None
    keywords: list[Text] | None = None


class Enrollment(_Part):
    # an int; a string that is not a number is kept so that it reads as "unknown", not refused
    count: int | str | None = None
    type: Text = None


class Masking(_Part):
    masking: Text = None


class DesignInfo(_Part):
    allocation: Text = None
    interventionModel: Text = None
    primaryPurpose: Text = None
    maskingInfo: Masking | None = None


class Design(_Part):
    studyType: Text = None
    phases: list[Text] | None = None
    enrollmentInfo: Enrollment | None = None
    designInfo: DesignInfo | None = None


class ArmGroup(_Part):
    label: Text = None
    type: Text = None
    description: Text = None
    interventionNames: list[Text] | None = None


class InterventionItem(_Part):
    type: Text = None
    name: Text = None
    description: Text = None
    otherNames: list[Text] | None = None


class ArmsInterventions(_Part):
    armGroups: list[ArmGroup | None] | None = None
    interventions: list[InterventionItem | None] | None = None


class Description(_Part):
    briefSummary: Text = None
    detailedDescription: Text = None


class Location(_Part):
    facility: Text = None
    city: Text = None
    state: Text = None
    country: Text = None
    status: Text = None


class ContactsLocations(_Part):
    locations: list[Location | None] | None = None


class Eligibility(_Part):
    eligibilityCriteria: Text = None
    minimumAge: Text = None
    maximumAge: Text = None
    sex: Text = None
    healthyVolunteers: bool | None = None
    stdAges: list[Text] | None = None


class OutcomeItem(_Part):
    measure: Text = None
    timeFrame: Text = None
    description: Text = None


class Outcomes(_Part):
    primaryOutcomes: list[OutcomeItem | None] | None = None
    secondaryOutcomes: list[OutcomeItem | None] | None = None
    otherOutcomes: list[OutcomeItem | None] | None = None


class ReferenceItem(_Part):
    pmid: Text = None
    type: Text = None
    citation: Text = None


class References(_Part):
    references: list[ReferenceItem | None] | None = None


class IpdSharing(_Part):
    ipdSharing: Text = None
    description: Text = None


class Protocol(_Part):
    identificationModule: Identification | None = None
    statusModule: Status | None = None
    sponsorCollaboratorsModule: Sponsors | None = None
    conditionsModule: Conditions | None = None
    designModule: Design | None = None
    armsInterventionsModule: ArmsInterventions | None = None
    descriptionModule: Description | None = None
    contactsLocationsModule: ContactsLocations | None = None
    eligibilityModule: Eligibility | None = None
    outcomesModule: Outcomes | None = None
    referencesModule: References | None = None
    ipdSharingStatementModule: IpdSharing | None = None


# -- derivedSection --------------------------------------------------------------------


class Mesh(_Part):
    id: Text = None
    term: Text = None


class Browse(_Part):
    meshes: list[Mesh | None] | None = None
    ancestors: list[Mesh | None] | None = None


class InterventionBrowse(_Part):
    meshes: list[Mesh | None] | None = None


class Derived(_Part):
    conditionBrowseModule: Browse | None = None
    interventionBrowseModule: InterventionBrowse | None = None


# -- resultsSection (what a reader is told was posted; monitor.core.results) ------------
# Counts are strings ("97") in the flow and baseline tables, integers in adverse events.


class FlowStats(_Part):
    groupId: Text = None
    numSubjects: Text = None


class DenomCount(_Part):
    groupId: Text = None
    value: Text = None


class Milestone(_Part):
    type: Text = None
    achievements: list[FlowStats | None] | None = None


class FlowPeriod(_Part):
    title: Text = None
    milestones: list[Milestone | None] | None = None


class ParticipantFlow(_Part):
    periods: list[FlowPeriod | None] | None = None


class Denom(_Part):
    units: Text = None
    counts: list[DenomCount | None] | None = None


class Baseline(_Part):
    denoms: list[Denom | None] | None = None


class OutcomeMeasure(_Part):
    type: Text = None
    title: Text = None
    reportingStatus: Text = None


class OutcomeMeasures(_Part):
    outcomeMeasures: list[OutcomeMeasure | None] | None = None


class EventGroup(_Part):
    title: Text = None
    deathsNumAffected: int | None = None
    deathsNumAtRisk: int | None = None
    seriousNumAffected: int | None = None
    seriousNumAtRisk: int | None = None
    otherNumAffected: int | None = None
    otherNumAtRisk: int | None = None


class AdverseEvents(_Part):
    eventGroups: list[EventGroup | None] | None = None


class Results(_Part):
    participantFlowModule: ParticipantFlow | None = None
    baselineCharacteristicsModule: Baseline | None = None
    outcomeMeasuresModule: OutcomeMeasures | None = None
    adverseEventsModule: AdverseEvents | None = None


class StudyRecord(_Part):
    """One study record: the parts of it ctmonitor reads."""

    protocolSection: Protocol | None = None
    resultsSection: Results | None = None
    derivedSection: Derived | None = None
    hasResults: bool | None = None


EMPTY_PROTOCOL = Protocol()

_DECODER = msgspec.json.Decoder(StudyRecord, strict=False)


def _error(exc: msgspec.MsgspecError, nct: str | None) -> RecordError:
    # msgspec names the field ("Expected `str`, got `object` - at `$.protocolSection...`")
    who = f"study {nct}" if nct else "a study record"
    return RecordError(f"{who} is not of the registry's documented shape: {exc}")


def _nct_hint(raw: Any) -> str | None:
    """The record's NCT id, when it can be told, for the error that refuses the record."""
    try:
        nct = raw["protocolSection"]["identificationModule"]["nctId"]
    except (KeyError, TypeError, IndexError):
        return None
    return nct if isinstance(nct, str) and NCT_RE.match(nct.strip().upper()) else None


def decode(raw: bytes) -> StudyRecord:
    """The record's bytes, as the registry sent them, decoded into what ctmonitor reads.

    The bytes are those of a page msgspec has already split (so well-formed JSON, without
    the lone surrogate escapes msgspec refuses: such a page is read by the lenient parser
    and its records re-written), or a record ctmonitor wrote itself.
    """
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        try:
            hint = _nct_hint(msgspec.json.decode(raw))
        except msgspec.DecodeError:
            hint = None
        raise _error(exc, hint) from None
    except msgspec.DecodeError as exc:
        raise RecordError(f"a study record that is not JSON: {exc}") from None


def from_data(data: Any) -> StudyRecord:
    """A record already parsed (a dict: one study by id, a history version, a stored
    record read by an older path) converted into the same structures, with the same checks."""
    if isinstance(data, StudyRecord):
        return data
    try:
        return msgspec.convert(data, StudyRecord, strict=False)
    except msgspec.ValidationError as exc:
        raise _error(exc, _nct_hint(data)) from None


def _struct_of(kind: Any) -> type[Struct] | None:
    """The structure a field holds (through `| None` and `list[...]`), or None for a scalar."""
    while typing.get_origin(kind) in (typing.Union, types.UnionType, list):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    return kind if isinstance(kind, type) and issubclass(kind, Struct) else None


@functools.cache
def declared_paths() -> frozenset[str]:
    """Every dotted path declared here, parts and leaves (`protocolSection`,
    `protocolSection.statusModule`, `protocolSection.statusModule.overallStatus`...)."""
    out: set[str] = set()

    def walk(kind: type[Struct], prefix: str) -> None:
        hints = typing.get_type_hints(kind)
        for attr, name in zip(kind.__struct_fields__, kind.__struct_encode_fields__, strict=True):
            path = f"{prefix}{name}"
            out.add(path)
            if (inner := _struct_of(hints[attr])) is not None:
                walk(inner, path + ".")

    walk(StudyRecord, "")
    return frozenset(out)


def declares(path: str) -> bool:
    """Whether a dotted record path is declared here: what `doctor` checks the registry
    sends must be what is read."""
    return path in declared_paths()
