"""Churn scoring: the probability that a member makes no purchase in the next horizon.

- `features`: what a member looked like at the end of a cut-off day, read set-based (one
  aggregate statement per table, GROUP BY member) into a pandas frame; the label is whether
  the member bought in the horizon after it.
- `modelling`: pure functions on those frames — the classifier, the two baselines, the
  figures of the model card.
- `services`: `churn_train` (one `ChurnModel` per as-of day) and `churn_score` (writes
  `MemberFigures.churn_probability` / `churn_band`), and the nightly job.
- `selectors`: the model that scores as of a day, and the card the staff page shows.
"""
