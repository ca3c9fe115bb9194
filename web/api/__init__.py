"""web.api."""
