"""Options a format may need, bound when the daemon builds its parser (``parse(obj)`` stays one-arg)."""

from __future__ import annotations

from dataclasses import dataclass

# Where a LiteLLM StandardLoggingPayload keeps a tenant, by the names ``--tenant-from`` accepts.
TENANT_SOURCES = (
    "tag",  # a "tenant:<id>" entry in request_tags (metadata={"tags": [...]} on the call)
    "team_id",  # metadata.user_api_key_team_id (LiteLLM proxy team)
    "team_alias",  # metadata.user_api_key_team_alias
    "end_user_id",  # metadata.user_api_key_end_user_id (proxy customer)
    "end_user",  # top-level end_user
    "user_id",  # metadata.user_api_key_user_id (proxy internal user)
    "key_alias",  # metadata.user_api_key_alias (virtual key alias)
    "org_id",  # metadata.user_api_key_org_id
)
# An explicit per-call tag is the most specific; then the proxy's billing units. The callback
# (callback.py) uses the same precedence, so both paths label a call alike.
DEFAULT_TENANT_FROM: tuple[str, ...] = ("tag", "team_id", "end_user_id", "end_user")


def parse_tenant_from(text: str) -> tuple[str, ...]:
    """``"team_id,tag"`` → ``("team_id", "tag")``; unknown names raise ValueError."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in TENANT_SOURCES]
    if unknown or not names:
        raise ValueError(f"unknown tenant source(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(TENANT_SOURCES)}")
    return names


@dataclass(frozen=True)
class ParserOptions:
    tenant_from: tuple[str, ...] = DEFAULT_TENANT_FROM
    # Attribution labels asked for (--extra-label): a LiteLLM payload fills those that are not standard
    # (key_alias, team_alias, …) from its request metadata.
    label_keys: tuple[str, ...] = ()
