"""The roll-up metrics: the one list of what the nightly job writes and the dashboards read.

Every figure is a row of `analytics.Rollup` (metric, period, store_key, tier_key, dim,
value). `period` is the first day of a calendar month in Asia/Shanghai unless said
otherwise; store_key / tier_key 0 is "all stores" / "all tiers".

Which store and tier a row belongs to:
- purchase figures (orders, revenue, buyers): the store of the purchase; the tier is the
  member's tier when the job ran (members move between tiers; the dashboard says so);
- member figures (members, stages, RFM, churn, cohorts, points): the member's store (home
  store, else enrolment store; -1 for none) and current tier, as on `MemberFigures`;
  members closed since have tier -1. Both -1s count in "all" only.
"""

from __future__ import annotations

# Members (period = month). members_total: enrolled by the month's end and not closed then;
# members_new: enrolled in the month; members_active: with a purchase in the month.
MEMBERS_TOTAL = "members_total"
MEMBERS_NEW = "members_new"
MEMBERS_ACTIVE = "members_active"

# Purchases (period = month): orders and gross revenue (¥) by business date of the purchase;
# returns (¥) by business date of the return; net revenue = revenue - returns.
ORDERS = "orders"
REVENUE = "revenue"
RETURNS = "returns"
# Members with at least one / at least two orders in the month (repurchase rate = 2 ÷ 1).
BUYERS = "buyers"
REPEAT_BUYERS = "repeat_buyers"

# Tiers. tier_members (period = as-of day, dim = tier code): members per current tier.
# tier_up / tier_down (period = month, tier_key = the tier moved to): changes in tier history
# by direction (a renewal is neither; a tier set by an import is not a migration).
TIER_MEMBERS = "tier_members"
TIER_UP = "tier_up"
TIER_DOWN = "tier_down"

# Points (period = month of the business time of the transaction): points issued (earned,
# positive adjustments), redeemed (rewards, payments), expired, on member accounts.
POINTS_ISSUED = "points_issued"
POINTS_REDEEMED = "points_redeemed"
POINTS_EXPIRED = "points_expired"
# Everything else, signed (reversals for returns, voided redemptions, negative adjustments).
# A member merge moves points between members and is in none of the four. So, over every
# member and month up to the day: issued − redeemed − expired + other = what the members
# held at the day's end.
POINTS_OTHER = "points_other"
# Outstanding points (period = as-of day): Σ available + pending, the ledger's figure when the
# job ran (account balances; a back-fill for an earlier day still reads today's).
POINTS_OUTSTANDING = "points_outstanding"
# Breakage by issue month (period = the month the lots were earned; dim "" = totals):
# lot_issued, lot_redeemed, lot_expired, lot_open (remaining), and lot_redeemed_by_age with
# dim = months since issue (0, 1, 2 ...): points of that month's lots spent that many months
# after it.
LOT_ISSUED = "lot_issued"
LOT_REDEEMED = "lot_redeemed"
LOT_EXPIRED = "lot_expired"
LOT_OPEN = "lot_open"
LOT_REDEEMED_BY_AGE = "lot_redeemed_by_age"

# Snapshots of MemberFigures (period = as-of day): members per stage (dim = stage), per RFM
# cell (dim = "R-F-M" scores, e.g. "5-4-3"; rfm_revenue: their net spend over 365 days), per
# churn band (dim = band) and per probability decile (dim = "0".."9").
STAGE_MEMBERS = "stage_members"
RFM_MEMBERS = "rfm_members"
RFM_REVENUE = "rfm_revenue"
CHURN_BAND_MEMBERS = "churn_band_members"
CHURN_DECILE_MEMBERS = "churn_decile_members"

# Cohorts (period = enrolment month): cohort_size (dim ""), and cohort_active with dim = k,
# the members of the cohort with a purchase in the k-th calendar month after enrolment
# (k = 0 is the enrolment month).
COHORT_SIZE = "cohort_size"
COHORT_ACTIVE = "cohort_active"

# Early warning (period = month): members who passed ANALYTICS_SILENT_DAYS without a purchase
# during the month (became churned), and members not churned at the month's start; the
# monthly churn rate is the first ÷ the second.
CHURNED = "churned"
NOT_CHURNED_AT_START = "not_churned_at_start"
