from allauth.account import views as allauth_views
from django.urls import include, path

from accounts import views

urlpatterns = [
    # The names the pages used before django-allauth, on its views.
    path("login/", allauth_views.login, name="login"),
    path("logout/", allauth_views.logout, name="logout"),
    path("signup/", allauth_views.signup, name="signup"),
    path("", views.account, name="account"),
    path("preferences/", views.preferences, name="preferences"),
    path("sign-out-everywhere/", views.sign_out_everywhere, name="sign-out-everywhere"),
    path("delete/", views.delete_account, name="account-delete"),
    path("password/reset/", views.password_reset, name="account_reset_password"),
    path("", include("allauth.urls")),
]
