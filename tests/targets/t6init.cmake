# t6init: constructors of every kind, for start-up tracing (t6151). In a
# folder of its own: the *.c glob of this directory makes executables.
add_library(t6init_lib SHARED ${CMAKE_CURRENT_LIST_DIR}/t6init/t6init_lib.c)
set_target_properties(t6init_lib PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SONDE_TARGET_BIN}
	OUTPUT_NAME t6init C_VISIBILITY_PRESET default)
add_executable(t6init ${CMAKE_CURRENT_LIST_DIR}/t6init/t6init.c)
set_target_properties(t6init PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${SONDE_TARGET_BIN})
target_compile_options(t6init PRIVATE -O1 -g)
target_link_libraries(t6init PRIVATE t6init_lib)
target_link_options(t6init PRIVATE -Wl,-init=exe_init -Wl,-rpath,${SONDE_TARGET_BIN})
