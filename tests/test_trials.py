"""One trial, several registrations (issue 35): which tracked registrations are one trial,
which of them stands for it, and when their statuses disagree. The pure rules; the end to
end story (polls of both registries, the landscape's one row, the event told once, the
digest) is in test_ctis_poll.py."""

from __future__ import annotations

from monitor.core.describe import change_text
from monitor.core.trials import Member, Standing, disagree, fold, join, registrations_of, statuses_text

NCT_A, NCT_B = "NCT06189157", "NCT05938725"
EUCT_A, EUCT_B = "2024-510663-34-00", "2023-503456-12-00"
EUDRACT = "2021-001234-56"
CHICTR = "ChiCTR2300071234"


def test_a_record_naming_another_tracked_registration_joins_them_whichever_way_it_names() -> None:
    # the NCT record names the CTIS number; in the other pair only the CTIS record names the NCT one
    trials = join(
        [
            Member(NCT_A, "ctgov", (f"ctis:{EUCT_A}",)),
            Member(EUCT_A, "ctis"),
            Member(NCT_B, "ctgov"),
            Member(EUCT_B, "ctis", (f"ctgov:{NCT_B}",)),
        ]
    )
    assert trials == {NCT_A: NCT_A, EUCT_A: NCT_A, NCT_B: NCT_B, EUCT_B: NCT_B}


def test_two_records_naming_one_untracked_number_are_one_trial() -> None:
    # a trial that moved from EudraCT to CTIS: both records cite the EudraCT number
    trials = join(
        [
            Member(NCT_A, "ctgov", (f"eudract:{EUDRACT}",)),
            Member(EUCT_A, "ctis", (f"eudract:{EUDRACT}",)),
        ]
    )
    assert trials[EUCT_A] == NCT_A


def test_two_registrations_of_one_registry_are_never_one_trial() -> None:
    # a main trial and its long-term follow-up both cite the same EudraCT number; the CTIS
    # record names the main trial: it joins that one, and the follow-up stays alone
    trials = join(
        [
            Member(NCT_A, "ctgov", (f"eudract:{EUDRACT}",)),
            Member(NCT_B, "ctgov", (f"eudract:{EUDRACT}",)),
            Member(EUCT_A, "ctis", (f"ctgov:{NCT_A}",)),
        ]
    )
    assert trials[NCT_A] == trials[EUCT_A] == NCT_A
    assert trials[NCT_B] == NCT_B


def test_the_trial_stands_under_a_registration_in_scope_clinicaltrials_gov_first() -> None:
    both = [Member(EUCT_A, "ctis", (f"ctgov:{NCT_A}",)), Member(NCT_A, "ctgov")]
    assert join(both)[EUCT_A] == NCT_A
    # the NCT record out of scope (say it names no condition the watch follows): the trial
    # is shown under the CTIS registration, which is
    out = [Member(EUCT_A, "ctis", (f"ctgov:{NCT_A}",)), Member(NCT_A, "ctgov", in_scope=False)]
    assert join(out)[NCT_A] == EUCT_A
    chictr = [Member(CHICTR, "chictr", (f"ctis:{EUCT_A}",)), Member(EUCT_A, "ctis")]
    assert join(chictr)[CHICTR] == EUCT_A


def test_a_trials_registrations_list_the_standing_one_then_tracked_then_named() -> None:
    group = [
        Member(EUCT_A, "ctis", (f"ctgov:{NCT_A}", f"eudract:{EUDRACT}")),
        Member(NCT_A, "ctgov", (f"chictr:{CHICTR}",)),
    ]
    assert registrations_of(group, NCT_A) == (
        f"ctgov:{NCT_A}",
        f"ctis:{EUCT_A}",
        f"eudract:{EUDRACT}",
        f"chictr:{CHICTR}",
    )


def test_statuses_disagree_only_across_classes() -> None:
    recruiting = Standing("ctgov", NCT_A, "RECRUITING", "Recruiting")
    assert not disagree([recruiting, Standing("ctis", EUCT_A, "RECRUITING", "Ongoing, recruiting")])
    assert not disagree(
        [recruiting, Standing("ctis", EUCT_A, "NOT_YET_RECRUITING", "Authorised, recruitment pending")]
    )
    assert not disagree([recruiting, Standing("chictr", CHICTR, None, "Pending")])  # unknown never disagrees
    ended = Standing("ctis", EUCT_A, "COMPLETED", "Ended", ("Germany",))
    assert disagree([recruiting, ended])
    assert disagree([Standing("ctgov", NCT_A, "ACTIVE_NOT_RECRUITING", "Active, not recruiting"), ended])


def test_the_disagreement_is_said_in_the_registries_words() -> None:
    statuses = [
        Standing("ctgov", NCT_A, "RECRUITING", "Recruiting").to_dict(),
        Standing("ctis", EUCT_A, "COMPLETED", "Ended", ("Germany",)).to_dict(),
    ]
    assert statuses_text(statuses) == "Recruiting on ClinicalTrials.gov, Ended in Germany on EU CTIS"
    many = Standing("ctis", EUCT_A, "COMPLETED", "Ended", ("Austria", "France", "Germany", "Spain")).to_dict()
    assert statuses_text([many]) == "Ended in 4 member states on EU CTIS"
    two = Standing("ctis", EUCT_A, "COMPLETED", "Ended", ("France", "Germany")).to_dict()
    assert statuses_text([two]) == "Ended in France and Germany on EU CTIS"
    told = change_text(
        "status_across_registries", "overall_status", "agree", {"agree": False, "statuses": statuses}
    )
    assert told == "statuses disagree — Recruiting on ClinicalTrials.gov, Ended in Germany on EU CTIS"
    again = change_text(
        "status_across_registries", "overall_status", "disagree", {"agree": True, "statuses": statuses}
    )
    assert again.startswith("statuses agree again — ")


def test_fold_leaves_one_row_per_trial_unless_the_standing_row_is_not_there() -> None:
    rows = [
        {"nct_id": NCT_A, "trial_id": NCT_A},
        {"nct_id": EUCT_A, "trial_id": NCT_A},
        {"nct_id": EUCT_B, "trial_id": NCT_B},  # its standing row is out of this view
        {"nct_id": CHICTR, "trial_id": None},
    ]
    assert [r["nct_id"] for r in fold(rows)] == [NCT_A, EUCT_B, CHICTR]
