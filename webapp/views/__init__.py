"""One blueprint per area: home (start page), tasks, instances, processes, admin, forums."""
