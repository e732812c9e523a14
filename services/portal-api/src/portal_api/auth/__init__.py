"""Who is signed in: sessions, the development sign-in, and CSRF protection."""
