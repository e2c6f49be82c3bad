from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")

    def ready(self) -> None:
        from core.imports import import_hooks_register, import_kind_register

        from . import context_processors  # noqa: F401 - its log-in signal receiver
        from .imports import MEMBER_IMPORT
        from .permissions import staff_required
        from .services import audit_log

        # The import framework's back-office access check and audit log are ours.
        import_hooks_register(staff_required=staff_required, audit=audit_log)
        import_kind_register(MEMBER_IMPORT)

        from core.config import config_models_register

        from .models import ApiToken, Store

        # The live API tokens (with their stores) are kept per process
        # (selectors.api_token_authenticate).
        config_models_register(ApiToken, Store)
