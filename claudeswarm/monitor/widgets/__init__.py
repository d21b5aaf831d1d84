"""The monitor's widgets; each owns its CSS, bindings and the messages it posts."""
