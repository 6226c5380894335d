"""Every /v1 endpoint as a spec of the one relay (gateway.relay): its name, dialect,
model types and parse function. gateway.api mounts them."""
