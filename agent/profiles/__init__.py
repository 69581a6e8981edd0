"""Vehicle profiles shipped with the agent: one TOML file per vehicle in this folder.

``reference_ev`` reads carbonlink's own reference bus (``dbc/carbonlink_ev.dbc``); the others read
real vehicles through DBCs of the ``opendbc`` package. See ``docs/profiles.md``.
"""

from pathlib import Path

from agent.errors import ProfileError

_FOLDER = Path(__file__).resolve().parent
SUFFIX = ".toml"


def shipped_profiles() -> dict[str, Path]:
    """Name → file of every shipped profile, sorted by name."""
    return {path.stem: path for path in sorted(_FOLDER.glob(f"*{SUFFIX}"))}


def shipped_profile(name: str) -> Path:
    """The file of the shipped profile ``name``, or a ProfileError listing the names there are."""
    found = shipped_profiles().get(name)
    if found is None:
        raise ProfileError(f"no shipped profile {name!r}; shipped: {', '.join(shipped_profiles())}")
    return found
