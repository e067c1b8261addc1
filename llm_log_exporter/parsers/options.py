"""Options a format may need, bound when the daemon builds its parser (``parse(obj)`` stays one-arg)."""

from __future__ import annotations

from dataclasses import dataclass

from llm_log_exporter.schema.litellm import DEFAULT_TENANT_FROM, TENANT_SOURCES

# Where LiteLLM keeps a tenant (names of ``--tenant-from``): declared beside the writer's mapping, which uses
# the same sources in the same default order, so the callback and a payload read later label a call alike.
__all__ = ["DEFAULT_TENANT_FROM", "TENANT_SOURCES", "ParserOptions", "parse_tenant_from"]


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
