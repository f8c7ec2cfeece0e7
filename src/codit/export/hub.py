"""Publishing an exported dataset folder on the Hugging Face hub.

``push_folder`` creates the dataset repository (or reuses it) and uploads the folder in one
commit through ``huggingface_hub.HfApi``. The token comes from the environment (``HF_TOKEN``)
or from ``huggingface-cli login``'s stored token, as ``huggingface_hub`` resolves it; it is
never printed, logged, or put in an error message. Tests pass a fake ``api``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from codit.errors import BackendError, ConfigError

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _scrub(text: str, token: str) -> str:
    """``text`` without the token (an HTTP error may echo a header)."""
    return text.replace(token, "***") if token else text


def hub_token(repo: str) -> str:
    """Check the repo id and find the token, before anything is written.

    Raises:
        ConfigError: a malformed repo id, or no token in the environment or the login store.
    """
    if not REPO_ID.match(repo):
        raise ConfigError(f"--push-to-hub takes ORG/NAME (a dataset repository id), not {repo!r}")
    from huggingface_hub import get_token

    token = get_token() or ""
    if not token:
        raise ConfigError(
            "--push-to-hub needs a hub token: set HF_TOKEN (a write token) or run `hf auth login`"
        )
    return token


def push_folder(
    folder: Path,
    repo: str,
    private: bool = False,
    commit_message: str = "Upload dataset exported by codit",
    api: Any = None,
) -> str:
    """Upload ``folder`` as the dataset repository ``repo`` (``ORG/NAME``).

    Args:
        folder: the exported folder (``README.md`` and ``data/``).
        repo: the repository id.
        private: create the repository private (an existing one keeps its visibility).
        commit_message: the hub commit's message.
        api: an ``HfApi``-like object; None builds ``huggingface_hub.HfApi()``.

    Returns:
        The dataset's URL on the hub.

    Raises:
        ConfigError: a malformed repo id or no token.
        BackendError: the hub refused or could not be reached.
    """
    token = hub_token(repo)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        url = api.create_repo(
            repo, token=token, repo_type="dataset", private=private, exist_ok=True
        )
        api.upload_folder(
            repo_id=repo,
            folder_path=str(folder),
            repo_type="dataset",
            token=token,
            commit_message=commit_message,
        )
    except Exception as err:  # any hub or network failure: one sentence, no token in it
        raise BackendError(
            f"uploading {folder} to the hub as {repo} failed: "
            f"{_scrub(f'{type(err).__name__}: {err}', token)}"
        ) from None
    return str(getattr(url, "url", None) or f"https://huggingface.co/datasets/{repo}")
