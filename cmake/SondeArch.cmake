# Picks the arch folder under src/arch. Only x86_64 exists today; anything
# else stops here with the list of what is supported.
set(SONDE_SUPPORTED_ARCHES x86_64)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
	set(SONDE_ARCH x86_64)
else()
	message(FATAL_ERROR "sonde: unsupported architecture '${CMAKE_SYSTEM_PROCESSOR}'; "
		"supported: ${SONDE_SUPPORTED_ARCHES}")
endif()
