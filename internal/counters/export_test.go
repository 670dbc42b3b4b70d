package counters

// DepartedGrace is departedGrace for the external tests.
const DepartedGrace = departedGrace
