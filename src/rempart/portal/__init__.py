"""A small reference "tiers payant" practitioner portal (FastAPI), serving the simulator's
population: the target of Rempart's end-to-end enforcement tests and demo.

    from rempart.portal import create_portal
    app = create_portal(Population(seed=1, size=5000), {"PH0042": "password"})
"""

from rempart.portal.app import create_portal

__all__ = ["create_portal"]
