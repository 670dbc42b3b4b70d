package engine

// SetSerial makes p read every snapshot on one goroutine, for the tests
// that compare the two ways of reading.
func SetSerial(p *Pipeline) { p.serial = true }
