"""The services a running bot shares between handlers (opened by `bot.telegram.lifecycle`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.service import AdminService
from bot.db.health import DatabaseHealth
from bot.login.service import LoginService
from bot.login.weblogin import WebLogin
from bot.metrics import Metrics


@dataclass(slots=True)
class Services:
    """Everything handlers use, in one place."""

    engine: AsyncEngine
    metrics: Metrics
    login: LoginService
    admin: AdminService
    admin_ids: frozenset[int]
    code_length: int
    workflow: tuple[str, ...]  # VERIFY_WORKFLOW
    can_call: bool  # the workflow has a voice call after its first channel
    resend_after: int  # seconds before "Send a new code" works
    audit_retention_days: int  # AUDIT_RETENTION_DAYS, for /privacy
    trust_contact: bool = False  # TRUST_TELEGRAM_CONTACT
    users_page_size: int = 10
    web: WebLogin | None = None  # the OpenID Connect provider, when OIDC_ISSUER is set
    database: DatabaseHealth = field(default_factory=DatabaseHealth)  # reachable, or down
