"""The "Moderators" group: its members (with staff status, to enter the admin) read
transcripts, hide and delete conversations, work the reports queue, suspend users, and see and
cap usage, without being superusers."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Moderators"
PERMISSIONS = {
    "conversations": [
        "view_conversation",
        "delete_conversation",
        "read_transcript",
        "hide_conversation",
    ],
    "moderation": [
        "view_report",
        "change_report",
        "view_moderationaction",
        "suspend_user",
        "view_usage",
        "view_tokenquota",
        "add_tokenquota",
        "change_tokenquota",
        "delete_tokenquota",
    ],
    "auth": ["view_user"],
}


def create_group(apps, schema_editor):
    # Permissions are made after all migrations have run; make them now, to grant them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, codenames in PERMISSIONS.items():
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )


def delete_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("conversations", "0004_moderation"),
        ("moderation", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
