"""The JSON API, one module per resource (search, images, collections, jobs, meta). Each route
calls one engine (or job runner) method; the app's handlers turn errors into one JSON shape."""
