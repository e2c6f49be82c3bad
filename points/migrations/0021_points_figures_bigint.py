"""Every points figure of a purchase or a return in 64 bits.

One purchase at the ¥200,000 cap can earn about 2 × 10^13 points with the largest category
rate (9,999.99), tier multiplier (99.99) and promotion multiplier (99.99) an administrator can
enter: past an integer column's 2^31. The ledger's own columns (balances, entries, lots,
transactions, tier activity) were 64-bit already. The eligible spend of such a purchase has
12 digits before the point. `points_purchase_post` (0015) already takes and writes these as
bigint and unconstrained numeric, so it stays as it is.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('points', '0020_ledger_recorded_at_brin'),
    ]

    operations = [
        migrations.AlterField(
            model_name='purchase',
            name='eligible_amount',
            field=models.DecimalField(decimal_places=2, max_digits=18, verbose_name='amount earning points (¥)'),
        ),
        migrations.AlterField(
            model_name='purchase',
            name='points_earned',
            field=models.PositiveBigIntegerField(default=0, verbose_name='points earned'),
        ),
        migrations.AlterField(
            model_name='purchase',
            name='points_used',
            field=models.PositiveBigIntegerField(default=0, verbose_name='points used as payment'),
        ),
        migrations.AlterField(
            model_name='return',
            name='points_reversed',
            field=models.PositiveBigIntegerField(default=0, verbose_name='points reversed'),
        ),
    ]
