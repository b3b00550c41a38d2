"""The HTTP face of the service: the JSON API for the platform's servers and superadmins."""
