# The command's renderers of the function tracers' records (tools/sonde):
# the function_graph text, the calls rebuilt from records, statistics and
# exports; then `sonde report`/`sonde export` on a recording written by the
# test (needs the sonde command built).
set(SONDE_CLI_DIR ${PROJECT_SOURCE_DIR}/tools/sonde)
sonde_unit_test(test_graph_render asan ${CMAKE_CURRENT_LIST_DIR}/test_graph_render.c
	${SONDE_CLI_DIR}/graph_render.c ${SONDE_CLI_DIR}/calltree.c
	${SONDE_CLI_DIR}/graph_export.c ${SONDE_CLI_DIR}/tracefile.c)
target_include_directories(test_graph_render PRIVATE ${SONDE_CLI_DIR})
add_dependencies(test_graph_render sonde_cli)
