from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = _("Platform")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from .config import config_changed_after_migrate

        post_migrate.connect(
            config_changed_after_migrate, sender=self, dispatch_uid="core.config_after_migrate"
        )
