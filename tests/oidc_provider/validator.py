from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    # The groups claim comes with the profile, as Keycloak's and Authentik's do by default.
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "groups": "profile"}

    def get_additional_claims(self, request):
        user = request.user
        return {
            "email": user.email,
            "email_verified": True,
            "preferred_username": user.username,
            "name": user.get_full_name() or user.username,
            "groups": sorted(user.groups.values_list("name", flat=True)),
        }
