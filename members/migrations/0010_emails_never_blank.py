from django.db import migrations, models

import members.models


class Migration(migrations.Migration):
    dependencies = [("members", "0009_blank_emails_to_null")]

    operations = [
        migrations.AlterField(
            model_name="member",
            name="email",
            field=members.models.BlankAsNullEmailField(
                blank=True, max_length=254, null=True, verbose_name="e-mail"
            ),
        ),
        migrations.AlterField(
            model_name="user",
            name="email",
            field=members.models.BlankAsNullEmailField(
                blank=True, max_length=254, null=True, unique=True, verbose_name="e-mail"
            ),
        ),
        migrations.AddConstraint(
            model_name="member",
            constraint=models.CheckConstraint(
                condition=models.Q(("email", ""), _negated=True),
                name="members_member_email_not_blank",
            ),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.CheckConstraint(
                condition=models.Q(("email", ""), _negated=True),
                name="members_user_email_not_blank",
            ),
        ),
    ]
