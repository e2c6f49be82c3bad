"""What every page's template needs of the logged-in user."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from .permissions import BACKOFFICE_PERMISSION

# Whether the header links to the back office: decided once per log-in and kept in the
# session, not read from the permission tables on every page a member opens (a role given or
# taken shows in the link at the next log-in; the back office itself checks every request).
BACKOFFICE_LINK_SESSION_KEY = "backoffice_link"


def backoffice_link(request: HttpRequest) -> dict[str, bool]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return {"show_backoffice_link": False}
    shown = request.session.get(BACKOFFICE_LINK_SESSION_KEY)
    if shown is None:
        shown = request.session[BACKOFFICE_LINK_SESSION_KEY] = user.has_perm(BACKOFFICE_PERMISSION)
    return {"show_backoffice_link": shown}


@receiver(user_logged_in, dispatch_uid="members.backoffice_link")
def _decide_again_at_log_in(sender, request: HttpRequest | None, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session.pop(BACKOFFICE_LINK_SESSION_KEY, None)
