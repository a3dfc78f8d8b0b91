"""Read paths over the embedded store. Every value from a user goes in as a bound parameter."""
