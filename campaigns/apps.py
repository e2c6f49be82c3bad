from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from . import jobs, messages, promotions

        promotions.register()
        messages.register()
        jobs.register()
        self._register_audit_labels()

    def _register_audit_labels(self) -> None:
        # The audit log names what the campaign services wrote (members cannot import us).
        from members.selectors import audit_action_register, audit_detail_register

        for action, label in (
            ("segment.create", _("Segment created")),
            ("segment.update", _("Segment changed")),
            ("segment.archive", _("Segment archived")),
            ("segment.export", _("Segment members downloaded")),
            ("campaign.launch", _("Campaign launched")),
            ("campaign.approve", _("Campaign approved")),
            ("campaign.cancel", _("Campaign cancelled")),
            ("campaign.approval_needed", _("Campaign's audience grew past the approval limit")),
            ("campaign.results_export", _("Campaign results downloaded")),
        ):
            audit_action_register(action=action, label=label)
        for key, label in (
            ("rules", _("Rules")),
            ("at", _("As of")),
            ("scheduled_at", _("Scheduled for")),
            ("waiting_for_approval", _("Waiting for approval")),
            ("was", _("Status before")),
            ("messages_withdrawn", _("Messages withdrawn")),
            # The launch's cost estimate (campaigns.services._estimate_details).
            ("campaign_name", _("Campaign")),
            ("treated", _("Members treated (estimate)")),
            ("points_cost", _("Points cost (¥)")),
            ("coupon_face_value", _("Coupon face value (¥)")),
            ("sms", _("SMS (estimate)")),
            ("total_cost", _("Total cost (¥)")),
        ):
            audit_detail_register(key=key, label=label)
