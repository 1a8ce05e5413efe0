"""HTTP plumbing shared by every area: app keys, the JSON error shape, auth, the API decorator."""
