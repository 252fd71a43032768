package config

// Parses is how many repo configs have been parsed so far.
func Parses() int64 { return parses.Load() }
