"""What a reader's filters follow, checked before anything is saved: how many studies they
follow today (the sign-up's preview), and that a study typed to follow by its NCT number
exists (tracked here, or on the registry)."""

from __future__ import annotations

from typing import Any

from monitor import store
from monitor.config import SubscriberSettings
from monitor.core.domain import UserError


class FollowUseCases:
    """Mixed into Application through SubscriberUseCases (settings, database, classifier,
    and check_preferences)."""

    settings: Any
    database: Any
    classifier: Any

    def check_preferences(
        self, email: str, preferences: dict[str, Any]
    ) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def preview(self, preferences: dict[str, Any]) -> int:
        """How many studies these filters follow today (the sign-up shows it before anything
        is saved)."""
        from monitor.publishing import delivery

        prefs = self.check_preferences("preview@example.org", preferences)
        sub = SubscriberSettings(name="preview", email="preview@example.org", **prefs)
        flt = delivery.subscriber_filter(sub, self.classifier)
        with self.database.session() as s:
            return sum(1 for r in store.current_study_rows(s) if not r.gone and flt.matches(r))

    def _check_on_registry(self, nct_ids: list[str]) -> None:
        """A study a reader types to follow exists: tracked here, or on the registry (one
        request each, no retries, so a page never waits long). A number the registry does
        not know is a one-line error; when the registry cannot be asked, the study is
        accepted and the next poll reads it."""
        if not nct_ids:
            return
        from monitor.registry.answers import ApiError, ApiNotFound
        from monitor.registry.client import CtGovClient

        with self.database.session() as s:
            # an EU CT number not tracked yet is accepted: the next CTIS poll reads it by number
            unknown = [n for n in nct_ids if store.study_row(s, n) is None and n.upper().startswith("NCT")]
        if not unknown:
            return
        api = self.settings.api.model_copy(update={"max_attempts": 1, "timeout_seconds": 10.0})
        try:
            with CtGovClient(api) as client:
                for nct in unknown[:10]:
                    try:
                        client.get_study(nct)
                    except ApiNotFound:
                        raise UserError(
                            f"{nct} is not on ClinicalTrials.gov: check the number (NCT and 8 digits)"
                        ) from None
        except ApiError:
            return  # the registry did not answer: the next poll reads it, or says it is gone
        except OSError:
            return
