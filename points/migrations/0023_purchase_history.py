from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("points", "0022_field_verbose_names")]

    operations = [
        migrations.AddField(
            model_name="purchase",
            name="history",
            field=models.BooleanField(default=False, verbose_name="imported as history"),
        ),
    ]
