from django.urls import path

from teams import views

urlpatterns = [
    path("invite/<str:token>/", views.invite, name="invite"),
    path("teams/<int:team_id>/invites/", views.invite_new, name="invite-new"),
    path("teams/", views.teams, name="teams"),
    path("teams/<int:team_id>/", views.team, name="team"),
    path("teams/<int:team_id>/members/", views.member_add, name="member-add"),
    path(
        "teams/<int:team_id>/members/<int:membership_id>/role/",
        views.member_role,
        name="member-role",
    ),
    path(
        "teams/<int:team_id>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
]
