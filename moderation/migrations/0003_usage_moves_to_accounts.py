"""Usage and TokenQuota are the accounts app's now (accounts 0001 took their tables)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_usage_and_quotas"),
        ("moderation", "0002_moderators_group"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="TokenQuota"),
                migrations.DeleteModel(name="Usage"),
            ],
            database_operations=[],
        ),
    ]
