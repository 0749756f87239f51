# Every warning flag lives here.
set(SONDE_WARNINGS -Wall -Wextra -Wshadow -Wno-unused-parameter -Wmissing-prototypes
	-Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral)
set(SONDE_CXX_WARNINGS -Wall -Wextra -Wno-unused-parameter)
if(SONDE_WERROR)
	list(APPEND SONDE_WARNINGS -Werror)
endif()
