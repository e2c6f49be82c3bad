"""Member URLs: `portal_patterns` mount at / (namespace portal), `staff_patterns` at /staff/.

`account_patterns` mount at /accounts/ beside allauth's, named the allauth way (no namespace).
"""

from __future__ import annotations

from django.urls import path, re_path

from . import account_views, job_views, staff_views, views

MEMBER_NO = r"(?P<member_no>8[0-9]{11})"

portal_patterns = [
    path("", views.home, name="home"),
    path("profile/", views.profile, name="profile"),
    path("invite/", views.referral, name="referral"),
    path("privacy/", views.consent, name="consent"),
    path("privacy/notice/", views.privacy_notice, name="privacy-notice"),
    path("privacy/export/", views.data_export, name="data-export"),
    path("privacy/close/", views.account_close, name="account-close"),
]

account_patterns = [
    # Before allauth's own "signup/", which it replaces (same name and URL).
    path("signup/", account_views.signup, name="account_signup"),
    path(
        "password/after-code/",
        account_views.password_after_code,
        name="account_password_after_code",
    ),
]

staff_patterns = [
    path("", staff_views.home, name="home"),
    path("members/", staff_views.member_search, name="member-search"),
    path("members/new/", staff_views.member_enrol, name="member-enrol"),
    re_path(rf"^members/{MEMBER_NO}/$", staff_views.member_detail, name="member-detail"),
    re_path(
        rf"^members/{MEMBER_NO}/reveal-phone/$",
        staff_views.member_reveal_phone,
        name="member-reveal-phone",
    ),
    path("audit/", staff_views.audit_log, name="audit-log"),
    path("audit/export.csv", staff_views.audit_log_csv, name="audit-log-csv"),
    path("jobs/", job_views.job_runs, name="jobs"),
    path("jobs/rerun/", job_views.job_rerun, name="job-rerun"),
    path("jobs/<int:run_id>/", job_views.job_run_detail, name="job-run-detail"),
]
