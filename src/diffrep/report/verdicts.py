"""The one-line verdict every claim in the report gets."""


def verdict(ok: bool, why: str) -> str:
    """Whether the claim reproduces here, and the numbers that decide it."""
    return f"**{'reproduces' if ok else 'does not reproduce'}** here: {why}."
