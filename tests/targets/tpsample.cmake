# Static tracepoints (issue 5): a library with TRACE_EVENT tracepoints, a
# program that uses it, and a library that program opens with dlopen().
# Built plainly, with no libsonde: an instrumented object needs none.
#   libtpsample.so   system tpsample: tps_int, tps_str, tps_array, tps_enter/leave
#   libtpdl.so       system tpdl: tpdl_hello (dlopen()ed by tpsample_prog)
#   tpsample_prog    run [N] | dlopen LIB DIR | spin N THREADS
include_guard(GLOBAL)

set(SONDE_TPSAMPLE_DIR ${CMAKE_CURRENT_LIST_DIR}/tpsample)

foreach(lib tpsample tpdl)
	add_library(${lib} SHARED ${SONDE_TPSAMPLE_DIR}/${lib}.c)
	set_target_properties(${lib} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SONDE_TARGET_BIN}
		C_VISIBILITY_PRESET default)
	# tpsample_trace.h through <…> (the default), tpdl_trace.h through TRACE_INCLUDE_PATH
	target_include_directories(${lib} PRIVATE ${PROJECT_SOURCE_DIR}/include ${SONDE_TPSAMPLE_DIR}
		${CMAKE_CURRENT_LIST_DIR})
	target_compile_options(${lib} PRIVATE ${SONDE_WARNINGS} -O2 -g)
endforeach()

add_executable(tpsample_prog ${SONDE_TPSAMPLE_DIR}/tpsample_prog.c)
set_target_properties(tpsample_prog PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${SONDE_TARGET_BIN}
	BUILD_RPATH ${SONDE_TARGET_BIN})
target_compile_options(tpsample_prog PRIVATE ${SONDE_WARNINGS} -O2 -g)
target_link_libraries(tpsample_prog PRIVATE tpsample dl pthread)
add_dependencies(tpsample_prog tpdl)
