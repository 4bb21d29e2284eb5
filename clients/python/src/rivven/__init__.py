"""rivven: the client of the rivven quota sidecar (docs/protocol.md), blocking and asyncio."""

from .aio import AsyncQuotaClient
from .breaker import BreakerOptions, BreakerState, CircuitBreaker
from .broker import DEFAULT_RECORD_DEADLINE, DENIED, AsyncBrokerQuotas, BrokerQuotas
from .client import QuotaClient
from .errors import ERROR_CODES, RETRIABLE_CODES, RivvenError, is_retriable
from .options import DEFAULT_CLIENT_OPTIONS, ClientOptions
from .protocol import Denied, HelloOk, LeaseResult, Period, QuotaAlteration, QuotaEntry, RecordResult

__all__ = [
    "DEFAULT_CLIENT_OPTIONS",
    "DEFAULT_RECORD_DEADLINE",
    "DENIED",
    "ERROR_CODES",
    "RETRIABLE_CODES",
    "AsyncBrokerQuotas",
    "AsyncQuotaClient",
    "BreakerOptions",
    "BreakerState",
    "BrokerQuotas",
    "CircuitBreaker",
    "ClientOptions",
    "Denied",
    "HelloOk",
    "LeaseResult",
    "Period",
    "QuotaAlteration",
    "QuotaClient",
    "QuotaEntry",
    "RecordResult",
    "RivvenError",
    "is_retriable",
]
__version__ = "0.1.0"
