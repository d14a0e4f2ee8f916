"""Moderators list and revoke anyone's API keys, and see the calls made with them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Moderators"
PERMISSIONS = ["view_apikey", "change_apikey", "view_apicall"]


def grant(apps, schema_editor):
    # Permissions are made after all migrations have run; make them now, to grant them.
    app_config = apps.get_app_config("api")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="api", codename__in=PERMISSIONS)
    )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    group = apps.get_model("auth", "Group").objects.filter(name=GROUP).first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="api", codename__in=PERMISSIONS)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("moderation", "0003_usage_moves_to_accounts"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
