"""The use cases, built once by the composition root and handed to the HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.clock import Clock
from gateway.services.admission import AdmissionService
from gateway.services.consent import ConsentService
from gateway.services.organisations import OrganisationService
from gateway.services.policies import PolicyBook
from gateway.services.ports import Store
from gateway.services.registry import RegistryService
from gateway.services.request_audit import RequestAudit
from gateway.services.sessions import SessionService


@dataclass(frozen=True)
class Services:
    clock: Clock
    policies: PolicyBook
    store: Store
    organisations: OrganisationService
    registry: RegistryService
    consent: ConsentService
    sessions: SessionService
    admission: AdmissionService
    audit: RequestAudit
