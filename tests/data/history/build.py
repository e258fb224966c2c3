"""Rebuild the recorded record histories in this folder (run: python tests/data/history/build.py).

Each study folder holds what the registry's internal history endpoints answer:
`index.json` (GET /api/int/studies/{id}/history), `v{N}.json` (GET .../history/{N}) and
`current.json` (GET /api/v2/studies/{id}, the record a poll sees today).

- NCT04280705 starts from a real version 0 as the registry served it (HTML markup and
  entities such as `&#x2F;`, no derivedSection); versions 1-3 apply the kinds of edits its
  real history shows (recruitment opens, sites are added, enrollment grows, the phase
  moves, recruitment closes). `current.json` is version 3 in the v2 API's own form
  (markdown text, entities decoded), so a correct normalizer sees no difference.
- NCT05938725 (KYSA-1, CAR T in lupus nephritis) is built the same way from the record in
  tests/data/domain/records.jsonl: registered not yet recruiting, then recruiting with a
  site, an enrollment revision, and today's record.
- NCT06359041 has an empty history (`changes: []`), as the registry answers for records
  whose history it does not expose.
"""

from __future__ import annotations

import copy
import html
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DATA = HERE.parent


def _write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _to_v2(obj: Any) -> Any:
    """A history body as the v2 API renders the same record: entities decoded, no HTML tags."""
    if isinstance(obj, dict):
        return {k: _to_v2(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_v2(v) for v in obj]
    if isinstance(obj, str):
        return html.unescape(obj.replace("<p>", "").replace("</p>", "\n")).strip()
    return obj


def _dated(record: dict[str, Any], submitted: str, posted: str) -> dict[str, Any]:
    status = record["protocolSection"]["statusModule"]
    status["lastUpdateSubmitDate"] = submitted
    status["lastUpdatePostDateStruct"] = {"date": posted, "type": "ACTUAL"}
    return record


def _index(versions: list[dict[str, Any]], labels: list[list[str]]) -> dict[str, Any]:
    changes = []
    for n, (body, mods) in enumerate(zip(versions, labels, strict=True)):
        status = body["protocolSection"]["statusModule"]
        changes.append(
            {
                "version": n,
                "date": status["lastUpdateSubmitDate"],
                "status": status["overallStatus"],
                "studyType": body["protocolSection"].get("designModule", {}).get("studyType"),
                "moduleLabels": mods,
                "lastUpdateSubmitQcDate": status["lastUpdateSubmitDate"],
            }
        )
    return {"changes": changes, "lastUpdateVersions": {}, "outcomesUpdateCount": 0}


def _save(nct: str, versions: list[dict[str, Any]], labels: list[list[str]]) -> None:
    folder = HERE / nct
    _write(folder / "index.json", _index(versions, labels))
    for n, body in enumerate(versions):
        _write(folder / f"v{n}.json", {"studyVersion": n, "study": body})
    _write(folder / "current.json", _to_v2(versions[-1]))


def actt() -> None:
    v0 = json.loads((DATA / "history_NCT04280705_v0.trajnovd.json").read_text(encoding="utf-8"))["study"]
    v1 = _dated(copy.deepcopy(v0), "2020-02-24", "2020-02-25")
    s1 = v1["protocolSection"]["statusModule"]
    s1["overallStatus"] = "RECRUITING"
    s1["startDateStruct"] = {"date": "2020-02-21", "type": "ACTUAL"}
    v1["protocolSection"]["contactsLocationsModule"]["locations"][0]["status"] = "RECRUITING"

    v2 = _dated(copy.deepcopy(v1), "2020-03-13", "2020-03-17")
    locations = v2["protocolSection"]["contactsLocationsModule"]["locations"]
    locations += [
        {
            "facility": "Emory Vaccine Center - The Hope Clinic",
            "status": "RECRUITING",
            "city": "Decatur",
            "state": "Georgia",
            "zip": "30030",
            "country": "United States",
        },
        {
            "facility": "University of Washington - Virology Research Clinic",
            "status": "RECRUITING",
            "city": "Seattle",
            "state": "Washington",
            "zip": "98104",
            "country": "United States",
        },
    ]
    v2["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 440, "type": "ESTIMATED"}
    v2["protocolSection"]["designModule"]["phases"] = ["PHASE3"]

    v3 = _dated(copy.deepcopy(v2), "2020-04-29", "2020-04-30")
    v3["protocolSection"]["statusModule"]["overallStatus"] = "ACTIVE_NOT_RECRUITING"
    v3["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 1063, "type": "ACTUAL"}
    for loc in v3["protocolSection"]["contactsLocationsModule"]["locations"]:
        loc.pop("status", None)
    v0 = _dated(v0, "2020-02-20", "2020-02-21")
    _save(
        "NCT04280705",
        [v0, v1, v2, v3],
        [
            [],
            ["Study Status", "Contacts/Locations"],
            ["Study Design", "Contacts/Locations"],
            ["Study Status"],
        ],
    )


def kysa() -> None:
    current = None
    for line in (DATA / "domain" / "records.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["protocolSection"]["identificationModule"]["nctId"] == "NCT05938725":
            current = record
    assert current is not None
    v3 = _dated(copy.deepcopy(current), "2025-10-27", "2025-10-29")
    summary = v3["protocolSection"]["descriptionModule"]["briefSummary"]
    v3["protocolSection"]["descriptionModule"]["briefSummary"] = f"<p>{html.escape(summary)}</p>"

    v0 = copy.deepcopy(v3)
    ps = v0["protocolSection"]
    ps["statusModule"]["overallStatus"] = "NOT_YET_RECRUITING"
    ps["statusModule"]["startDateStruct"] = {"date": "2023-09", "type": "ESTIMATED"}
    ps["designModule"]["enrollmentInfo"] = {"count": 12, "type": "ESTIMATED"}
    ps.pop("contactsLocationsModule", None)
    v0 = _dated(v0, "2023-07-05", "2023-07-11")

    v1 = copy.deepcopy(v0)
    ps = v1["protocolSection"]
    ps["statusModule"]["overallStatus"] = "RECRUITING"
    ps["statusModule"]["startDateStruct"] = {"date": "2023-04-28", "type": "ACTUAL"}
    ps["contactsLocationsModule"] = {"locations": [{"country": "United States", "status": "RECRUITING"}]}
    v1 = _dated(v1, "2023-10-02", "2023-10-04")

    v2 = copy.deepcopy(v1)
    v2["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 20, "type": "ESTIMATED"}
    v2 = _dated(v2, "2024-06-18", "2024-06-20")
    v3["protocolSection"]["statusModule"]["startDateStruct"] = {"date": "2023-04-28", "type": "ACTUAL"}
    _save(
        "NCT05938725",
        [v0, v1, v2, v3],
        [
            [],
            ["Study Status", "Contacts/Locations"],
            ["Study Design"],
            ["Study Status", "Contacts/Locations"],
        ],
    )


def empty() -> None:
    _write(HERE / "NCT06359041" / "index.json", {"changes": []})


if __name__ == "__main__":
    actt()
    kysa()
    empty()
