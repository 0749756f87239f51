# LD_PRELOAD library of t3002, in ${CMAKE_BINARY_DIR}/tests/lib:
#   libsonde_t3_shim.so  logs malloc, free, calloc and realloc calls (sizes,
#                        pointers) between two marker functions that sonde
#                        probes in the same run (no libsonde: an independent
#                        oracle)
add_library(sonde_t3_shim SHARED ${CMAKE_CURRENT_LIST_DIR}/t3_alloc_shim.c)
set_target_properties(sonde_t3_shim PROPERTIES
	LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/lib C_VISIBILITY_PRESET hidden)
target_compile_options(sonde_t3_shim PRIVATE ${SONDE_WARNINGS})
target_compile_definitions(sonde_t3_shim PRIVATE _GNU_SOURCE)
target_link_libraries(sonde_t3_shim PRIVATE dl)
# -z now: no lazy binding (and so no allocation by the dynamic linker) inside the window
target_link_options(sonde_t3_shim PRIVATE -Wl,-z,now)
