from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from . import jobs, messages, promotions, services

        promotions.register()
        messages.register()
        jobs.register()
        services.register()
