"""config.toml's [literature] table: publications found by the trials' registry numbers.

Kept apart from monitor.config (which reads it) so each stays a readable size.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from monitor.settings_base import Pacing, http_url


class LiteratureSettings(Pacing):
    """PubMed (NCBI E-utilities) and Europe PMC, searched for each tracked study's registry numbers."""

    pubmed: bool = True
    europepmc: bool = True
    pubmed_url: str = "https://eutils.ncbi.nlm.nih.gov"
    europepmc_url: str = "https://www.ebi.ac.uk"
    # NCBI asks E-utilities users for a contact address (sent as `email`); optional.
    email: str = ""
    # The environment variable that holds an NCBI API key, if you have one: with a key
    # NCBI allows 10 requests a second instead of 3. The key itself never goes in this file.
    api_key_env: str = "NCBI_API_KEY"
    pubmed_interval_seconds: Annotated[float, Field(ge=0, le=60)] = 0.34
    pubmed_interval_with_key_seconds: Annotated[float, Field(ge=0, le=60)] = 0.1
    # Europe PMC publishes no fixed rate; this keeps ctmonitor well inside fair use.
    min_interval_seconds: Annotated[float, Field(ge=0, le=60)] = 0.5
    # Registry numbers per search request (an OR of them); more means fewer requests.
    terms_per_request: Annotated[int, Field(ge=1, le=100)] = 20
    # Each later search goes back this far before the last one: a paper indexed late, or
    # whose registry numbers were added to its record later, is still found.
    overlap_days: Annotated[int, Field(ge=0, le=365)] = 30
    # the rest of the pacing and retry keys as [api]'s (settings_base.Pacing)
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 60.0

    @field_validator("pubmed_url", "europepmc_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        return http_url(v, "https://eutils.ncbi.nlm.nih.gov")
