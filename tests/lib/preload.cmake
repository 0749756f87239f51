# LD_PRELOAD libraries of the integration tests, in ${CMAKE_BINARY_DIR}/tests/lib.
#   libsonde_count_preload.so  t6001: probe counts with sonde, and the
#                              kernel's uprobes enabled over the same window
#   libsonde_count_shim.so     t6001: the same counts by interposition (no
#                              libsonde: an independent counter)
# -z now: no lazy binding inside the counting window.
set(SONDE_PRELOAD_DIR ${CMAKE_BINARY_DIR}/tests/lib)

add_library(sonde_count_preload SHARED ${CMAKE_CURRENT_LIST_DIR}/probe_count_preload.c)
target_link_libraries(sonde_count_preload PRIVATE sonde dl)

add_library(sonde_count_shim SHARED ${CMAKE_CURRENT_LIST_DIR}/probe_count_preload.c)
target_compile_definitions(sonde_count_shim PRIVATE SONDE_COUNT_SHIM)
target_link_libraries(sonde_count_shim PRIVATE dl)

foreach(t sonde_count_preload sonde_count_shim)
	set_target_properties(${t} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SONDE_PRELOAD_DIR}
		C_VISIBILITY_PRESET default)
	target_compile_options(${t} PRIVATE ${SONDE_WARNINGS})
	target_compile_definitions(${t} PRIVATE _GNU_SOURCE)
	target_link_options(${t} PRIVATE -Wl,-z,now)
endforeach()
