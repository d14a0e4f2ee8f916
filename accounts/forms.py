from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "suspended": _(
            "This account is suspended. Ask an administrator if you think this is a mistake."
        ),
    }

    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            # Django refuses inactive users like unknown ones; with the right password, say
            # why (without the right one, nothing is told about the account).
            username, password = (
                self.cleaned_data.get("username"),
                self.cleaned_data.get("password"),
            )
            User = get_user_model()
            user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
            if user is not None and not user.is_active and user.check_password(password or ""):
                raise ValidationError(self.error_messages["suspended"], code="suspended") from None
            raise
