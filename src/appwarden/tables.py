"""Every capability's tables, imported so that ``Base.metadata`` is complete (Alembic autogenerate, tests).

It sits above every package because it names them all; only Alembic's environment and the tests import it.
"""

from appwarden.blind_index import models as blind_index_models
from appwarden.canary import models as canary_models
from appwarden.console import models as console_models
from appwarden.events import models as events_models
from appwarden.incident import models as incident_models
from appwarden.ledger import models as ledger_models
from appwarden.marketplace import models as marketplace_models
from appwarden.monitor import models as monitor_models
from appwarden.oauth import models as oauth_models
from appwarden.obligations import models as obligations_models
from appwarden.platform import models as platform_models
from appwarden.screening import models as screening_models

__all__ = [
    "blind_index_models",
    "canary_models",
    "console_models",
    "events_models",
    "incident_models",
    "ledger_models",
    "marketplace_models",
    "monitor_models",
    "oauth_models",
    "obligations_models",
    "platform_models",
    "screening_models",
]
