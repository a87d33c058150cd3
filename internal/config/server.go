package config

// LogLevel is AGENTBOT_LOG_LEVEL (debug, info, warn, error; default info).
func LogLevel(get Getenv) string {
	return newReader(get).str("AGENTBOT_LOG_LEVEL", "info")
}
